//! Any bytes as a manifest file for `lint`: reading, evaluating and
//! rendering must never panic, whatever the YAML (or not-YAML) is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stateless_operator::lint::{TextOptions, lint, load_bytes, render_json, render_text};
use stateless_operator::rules::Config;

fuzz_target!(|data: &[u8]| {
    let loaded = load_bytes(data.to_vec(), "fuzz.yaml");
    let findings = lint(&loaded, &Config::default());
    let mut out = Vec::new();
    let _ = render_json(&findings, &mut out);
    out.clear();
    let _ = render_text(&findings, &mut out, TextOptions::default());
});
