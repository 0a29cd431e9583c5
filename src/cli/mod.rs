//! The `stateless-operator` command line: one binary, one subcommand per job.
//!
//! Each subcommand lives in its own module and returns an [`ExitCode`], so that
//! `lint` can use the documented 0/1/2 convention and the others 0/1.

pub mod audit;
pub mod crd;
pub mod lint;
pub mod rules;
pub mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps the application tier stateless: a StatelessApp controller,
/// statelessness rules, an admission webhook and an offline linter.
#[derive(Debug, Parser)]
#[command(name = "stateless-operator", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the StatelessApp CustomResourceDefinition as YAML.
    Crd,
    /// Run the StatelessApp controller against the current kubeconfig or in-cluster config.
    Run(run::RunArgs),
    /// Check Kubernetes manifests offline for state in the application tier.
    Lint(lint::LintArgs),
    /// Print the statelessness rule catalogue.
    Rules(rules::RulesArgs),
    /// Run the statelessness rules over what runs in a cluster.
    Audit(audit::AuditArgs),
}

/// Parse arguments, run the subcommand and map its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => crd::run(),
        Command::Run(args) => run::run(args),
        Command::Lint(args) => lint::run(&args),
        Command::Rules(args) => rules::run(&args),
        Command::Audit(args) => audit::run(&args),
    }
}
