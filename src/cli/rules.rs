//! `stateless-operator rules`: print the rule catalogue.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::lint::{render_catalogue_json, render_catalogue_markdown, render_catalogue_text};

/// Output format of `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    /// The content of docs/rules.md.
    Markdown,
    Json,
}

/// Print the statelessness rule catalogue (names, severities, why, fix).
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

/// Run `rules`.
pub fn run(args: &RulesArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match args.format {
        RulesFormat::Text => render_catalogue_text(&mut out),
        RulesFormat::Markdown => render_catalogue_markdown(&mut out),
        RulesFormat::Json => render_catalogue_json(&mut out),
    }
    .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot write output: {err}");
            ExitCode::FAILURE
        }
    }
}
