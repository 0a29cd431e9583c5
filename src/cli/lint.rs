//! `stateless-operator lint`: check manifests offline.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::lint::{TextOptions, lint, load_paths, render_json, render_sarif, render_text};
use crate::rules::{Config, RuleId, Severity, UnknownRule, UnknownSeverity, is_blocking};

/// Output format of `lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// For people; coloured on a terminal unless NO_COLOR is set.
    Text,
    /// A JSON array of findings.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
}

fn parse_rule(s: &str) -> Result<RuleId, UnknownRule> {
    s.parse()
}

fn parse_severity(s: &str) -> Result<Severity, UnknownSeverity> {
    s.parse()
}

/// Check Kubernetes manifests for state kept in the application tier.
#[derive(Debug, Args)]
#[command(after_help = "\
Input: files and directories (searched recursively for *.yaml, *.yml, *.json); `-` or no \
path reads stdin. Multi-document YAML, Helm output, JSON and `kind: List` are accepted.

Exit status:
  0  no unwaived findings at or above --min-severity
  1  at least one such finding
  2  usage error (e.g. unknown rule name), or a file/document could not be read.
     Read errors are printed to stderr as `file:line: message`; every other document
     is still linted and its findings printed. A read error wins over findings (2, not 1).

Waive a rule on an object with the annotations `stateless.dev/allow: <rule>[,<rule>]` and
`stateless.dev/allow-reason: <why>`; waived findings are shown but never fail the run.
Run `stateless-operator rules` for the rule catalogue.")]
pub struct LintArgs {
    /// Files or directories to lint; `-` or none reads stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub report: ReportArgs,
}

/// Rule selection and output options, shared by `lint` and `audit`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,

    /// Report only findings at or above this severity (low, medium, high).
    #[arg(long, value_name = "SEVERITY", default_value = "low", value_parser = parse_severity)]
    pub min_severity: Severity,

    /// Run only this rule (repeatable).
    #[arg(long = "rule", value_name = "NAME", value_parser = parse_rule)]
    pub rules: Vec<RuleId>,

    /// Do not run this rule (repeatable).
    #[arg(long = "skip", value_name = "NAME", value_parser = parse_rule)]
    pub skip: Vec<RuleId>,

    /// Extra mount-path pattern for `local-upload-dir` (`*` wildcard; repeatable).
    #[arg(long = "upload-path", value_name = "PATTERN")]
    pub upload_paths: Vec<String>,
}

impl ReportArgs {
    /// The engine configuration these arguments ask for.
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.select_rules(&self.rules, &self.skip);
        config.min_severity = self.min_severity;
        config
            .upload_paths
            .extend(self.upload_paths.iter().cloned());
        config
    }

    /// Print `findings` in the chosen format; the exit code for them
    /// (1 when any unwaived finding is at or above --min-severity), or 2 when
    /// the output cannot be written.
    pub fn emit(&self, findings: &[crate::rules::Finding]) -> ExitCode {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let written = match self.format {
            LintFormat::Text => render_text(
                findings,
                &mut out,
                TextOptions {
                    color: use_colour(),
                },
            ),
            LintFormat::Json => render_json(findings, &mut out),
            LintFormat::Sarif => render_sarif(findings, &mut out),
        }
        .and_then(|()| out.flush());
        if let Err(err) = written {
            eprintln!("error: cannot write output: {err}");
            return ExitCode::from(2);
        }
        if findings.iter().any(|f| is_blocking(f, self.min_severity)) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Run `lint`; see the exit status in `--help`.
pub fn run(args: &LintArgs) -> ExitCode {
    let config = args.report.config();
    let loaded = load_paths(&args.paths);
    for err in &loaded.errors {
        eprintln!("{err}");
    }
    let findings = lint(&loaded, &config);
    let code = args.report.emit(&findings);
    if loaded.errors.is_empty() {
        code
    } else {
        ExitCode::from(2)
    }
}
