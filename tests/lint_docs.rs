//! docs/rules.md must be the committed output of `rules --format markdown`.

use std::path::PathBuf;

#[test]
fn docs_rules_md_is_up_to_date() {
    let mut generated = Vec::new();
    stateless_operator::lint::render_catalogue_markdown(&mut generated).expect("render");
    let generated = String::from_utf8(generated).expect("utf-8");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the rule catalogue; regenerate it with\n\n    \
         cargo run -- rules --format markdown > docs/rules.md\n",
        path.display()
    );
}
