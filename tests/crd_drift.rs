//! The committed CRD must be exactly what the code generates.
//!
//! `crds/statelessapps.stateless.dev.yaml` is what users and the chart
//! install; when the API types change it must be regenerated, or clusters get
//! a schema that disagrees with the operator.

use std::path::Path;
use std::process::Command;

const CRD_PATH: &str = "crds/statelessapps.stateless.dev.yaml";
const REGENERATE: &str =
    "run `cargo run -- crd > crds/statelessapps.stateless.dev.yaml` and commit the result";

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CRD_PATH);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}; {REGENERATE}", path.display()))
}

/// First differing line, to make the failure readable.
fn first_difference(expected: &str, actual: &str) -> String {
    expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .find(|(_, (e, a))| e != a)
        .map(|(i, (e, a))| format!("line {}: generated {e:?}, committed {a:?}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "generated {} lines, committed {} lines",
                expected.lines().count(),
                actual.lines().count()
            )
        })
}

#[test]
fn committed_crd_matches_the_code() {
    let generated = stateless_operator::crd::definition_yaml().expect("CRD renders");
    let committed = committed();
    assert!(
        generated == committed,
        "{CRD_PATH} is out of date ({}): {REGENERATE}",
        first_difference(&generated, &committed)
    );
}

#[test]
fn crd_subcommand_prints_the_committed_crd() {
    let output = Command::new(env!("CARGO_BIN_EXE_stateless-operator"))
        .arg("crd")
        .output()
        .expect("running stateless-operator crd");
    assert!(
        output.status.success(),
        "stateless-operator crd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let committed = committed();
    assert!(
        printed == committed,
        "`stateless-operator crd` differs from {CRD_PATH} ({}): {REGENERATE}",
        first_difference(&printed, &committed)
    );
}
