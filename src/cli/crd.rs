//! `stateless-operator crd`: print the StatelessApp CustomResourceDefinition.
//!
//! `crds/statelessapps.stateless.dev.yaml` is this output, committed;
//! `tests/crd_drift.rs` fails when the two differ.

use std::io::Write;
use std::process::ExitCode;

/// Print the CRD as YAML on stdout. Exit 1 (with the reason on stderr) when
/// it cannot be rendered or written.
pub fn run() -> ExitCode {
    let yaml = match crate::crd::definition_yaml() {
        Ok(yaml) => yaml,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(yaml.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the CRD to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
