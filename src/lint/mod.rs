//! Offline linting: read manifests (files, directories, stdin), evaluate the
//! rules, render findings. The renderers are shared with `audit`.
//!
//! ```
//! use stateless_operator::lint::{lint, load_str};
//! use stateless_operator::rules::Config;
//! let loaded = load_str("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n\
//!                        spec: {selector: {app: web}, sessionAffinity: ClientIP}\n", "svc.yaml");
//! let findings = lint(&loaded, &Config::default());
//! assert_eq!((findings[0].rule.as_str(), findings[0].line), ("session-affinity", Some(4)));
//! ```

mod fast;
mod loaded;
mod nodes;
mod read;
mod render;

pub use loaded::Loaded;
pub use read::{ReadError, collect_files, load_bytes, load_paths, load_str};
pub use render::{
    TextOptions, escape_text, render_catalogue_json, render_catalogue_markdown,
    render_catalogue_text, render_json, render_sarif, render_text,
};

use crate::rules::{Config, Finding};

/// Evaluate the rules over everything loaded and point findings at the line
/// of their field.
pub fn lint(loaded: &Loaded, config: &Config) -> Vec<Finding> {
    loaded.evaluate(config)
}
