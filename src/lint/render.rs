//! Renderers for findings (text, JSON, SARIF 2.1.0) and for the rule
//! catalogue (Markdown, text, JSON). Shared by `lint` and `audit`.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::rules::{
    App, DEFAULT_UPLOAD_PATHS, Finding, RuleId, RuleInfo, SCOPING, Setting, Severity,
    WAIVER_ANNOTATION, WAIVER_REASON_ANNOTATION, app_catalogue, catalogue,
};

/// Options for [`render_text`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Emit ANSI colours.
    pub color: bool,
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::High => "1;31",
        Severity::Medium => "1;33",
        Severity::Low => "36",
    }
}

/// Text from manifests made safe for a terminal or CI log: control
/// characters (ESC, CR, LF, ...), line and paragraph separators and bidi
/// overrides are shown escaped (`\u{1b}`), so a name cannot clear the
/// screen, recolour the output or forge a line.
pub fn escape_text(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn object_label(f: &Finding) -> String {
    match &f.namespace {
        Some(ns) => format!("{}/{}/{}", f.kind, ns, f.name),
        None => format!("{}/{}", f.kind, f.name),
    }
}

fn location(f: &Finding) -> Option<String> {
    match (&f.file, f.line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (Some(file), None) => Some(file.clone()),
        _ => None,
    }
}

/// Human-readable findings, one block per finding, then a summary line.
pub fn render_text<W: Write>(
    findings: &[Finding],
    out: &mut W,
    options: TextOptions,
) -> io::Result<()> {
    let paint = Paint(options.color);
    for f in findings {
        let loc = location(f).map(|l| format!("{l}: ")).unwrap_or_default();
        let sev = paint.wrap(severity_colour(f.severity), f.severity.as_str());
        let waived = if f.waived {
            paint.wrap("2", " (waived)")
        } else {
            String::new()
        };
        writeln!(
            out,
            "{}{sev}[{}]{waived} {}: {}",
            paint.wrap("1", &escape_text(&loc)),
            f.rule,
            escape_text(&object_label(f)),
            escape_text(&f.message)
        )?;
        writeln!(out, "    at {}", paint.wrap("2", &escape_text(&f.path)))?;
        if f.waived {
            let reason = f.waiver_reason.as_deref().unwrap_or("no reason given");
            writeln!(out, "    waived: {}", escape_text(reason))?;
        } else {
            writeln!(out, "    fix: {}", f.remediation)?;
        }
    }
    let active: Vec<&Finding> = findings.iter().filter(|f| !f.waived).collect();
    let count = |s: Severity| active.iter().filter(|f| f.severity == s).count();
    let waived = findings.len() - active.len();
    let summary = if active.is_empty() {
        "no findings".to_string()
    } else {
        format!(
            "{} finding{} ({} high, {} medium, {} low)",
            active.len(),
            if active.len() == 1 { "" } else { "s" },
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low)
        )
    };
    let waived = if waived > 0 {
        format!(", {waived} waived")
    } else {
        String::new()
    };
    writeln!(out, "{}{waived}", paint.wrap("1", &summary))
}

/// A JSON array of findings with the stable field names.
pub fn render_json<W: Write>(findings: &[Finding], out: &mut W) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, findings).map_err(io::Error::other)?;
    writeln!(out)
}

/// SARIF `artifactLocation.uri`: a relative, `/`-separated, percent-encoded path.
fn sarif_uri(file: &str) -> String {
    let mut path = std::path::PathBuf::from(file);
    if path.is_absolute()
        && let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = path.strip_prefix(&cwd)
    {
        path = rel.to_path_buf();
    }
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("./").unwrap_or(&text).to_string();
    let text = if text == "-" {
        "stdin".to_string()
    } else {
        text
    };
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sarif_rule(info: &RuleInfo) -> Value {
    json!({
        "id": info.name(),
        "name": info.name(),
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": info.why},
        "help": {
            "text": format!("{}\n\nFix: {}", info.why, info.remediation),
            "markdown": format!("{}\n\n**Fix:** {}\n\n**Detects:** {}", info.why, info.remediation, info.detects),
        },
        "defaultConfiguration": {"level": info.severity.sarif_level()},
        "properties": {"tags": ["statelessness"], "severity": info.severity.as_str()},
    })
}

/// SARIF 2.1.0 log accepted by GitHub code scanning. Waived findings are
/// included with an `inSource` suppression.
pub fn render_sarif<W: Write>(findings: &[Finding], out: &mut W) -> io::Result<()> {
    let rules: Vec<Value> = catalogue().iter().map(sarif_rule).collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule.as_str(),
                "ruleIndex": RuleId::ALL.iter().position(|r| *r == f.rule).unwrap_or(0),
                "level": f.severity.sarif_level(),
                "message": {"text": format!("{} {}: {} Fix: {}", f.kind, f.name, f.message, f.remediation)},
                "properties": {
                    "kind": f.kind,
                    "namespace": f.namespace,
                    "name": f.name,
                    "path": f.path,
                },
            });
            if let Some(file) = &f.file {
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": {"uri": sarif_uri(file)},
                        "region": {"startLine": f.line.unwrap_or(1).max(1)},
                    },
                    "logicalLocations": [{
                        "fullyQualifiedName": format!("{}/{}", f.kind, f.name),
                        "kind": "object",
                    }],
                }]);
            }
            if f.waived {
                result["suppressions"] = json!([{
                    "kind": "inSource",
                    "justification": f.waiver_reason.clone().unwrap_or_default(),
                }]);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "stateless-operator",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &log).map_err(io::Error::other)?;
    writeln!(out)
}

/// The catalogue as Markdown (`docs/rules.md`).
pub fn render_catalogue_markdown<W: Write>(out: &mut W) -> io::Result<()> {
    writeln!(out, "# Statelessness rules")?;
    writeln!(out)?;
    writeln!(
        out,
        "<!-- Generated by `cargo run -- rules --format markdown > docs/rules.md`; do not edit. -->"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "The rule engine (`src/rules`) is shared by the controller, the admission webhook, \
         `stateless-operator lint` and `audit`. Severities are ordered `low < medium < high`; \
         `lint --min-severity` and SARIF levels (`high` = error, `medium` = warning, `low` = note) \
         follow them."
    )?;
    writeln!(out)?;
    writeln!(out, "| Rule | Severity | Reports |")?;
    writeln!(out, "| --- | --- | --- |")?;
    for info in catalogue() {
        writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            info.name(),
            info.name(),
            info.severity,
            info.summary
        )?;
    }
    for info in catalogue() {
        writeln!(out)?;
        writeln!(out, "## {}", info.name())?;
        writeln!(out)?;
        writeln!(out, "Severity: **{}**. {}", info.severity, info.summary)?;
        writeln!(out)?;
        writeln!(out, "**Why:** {}", info.why)?;
        writeln!(out)?;
        writeln!(out, "**Fix:** {}", info.remediation)?;
        writeln!(out)?;
        writeln!(out, "**Detects:** {}", info.detects)?;
    }
    writeln!(out)?;
    writeln!(out, "## Default upload paths")?;
    writeln!(out)?;
    writeln!(
        out,
        "`local-upload-dir` matches mount paths against these patterns (`*` matches any \
         characters including `/`, case-insensitive); `lint --upload-path PATTERN` adds more:"
    )?;
    writeln!(out)?;
    for p in DEFAULT_UPLOAD_PATHS {
        writeln!(out, "- `{p}`")?;
    }
    writeln!(out)?;
    render_app_catalogue(out)?;
    writeln!(out)?;
    writeln!(out, "## Scoping")?;
    writeln!(out)?;
    writeln!(out, "{SCOPING}")?;
    writeln!(out)?;
    writeln!(out, "## Waiver example")?;
    writeln!(out)?;
    writeln!(out, "```yaml")?;
    writeln!(out, "metadata:")?;
    writeln!(out, "  annotations:")?;
    writeln!(
        out,
        "    {WAIVER_ANNOTATION}: single-replica,writable-root-fs"
    )?;
    writeln!(
        out,
        "    {WAIVER_REASON_ANNOTATION}: \"singleton by design; state is in Postgres\""
    )?;
    writeln!(out, "```")
}

/// `KEY=a`, `KEY=a/b`, `KEY=<any value>`: one setting for a table cell.
fn setting_text(setting: &Setting) -> String {
    let values = if setting.values.is_empty() {
        "<any value>".to_string()
    } else {
        setting.values.join("/")
    };
    let keys = setting
        .keys
        .iter()
        .map(|k| format!("`{k}={values}`"))
        .collect::<Vec<_>>();
    keys.join(" or ")
}

/// The settings column of one app: what moves, enables or disables its
/// state paths, and its session settings.
fn app_settings_text(app: &App) -> String {
    let mut parts = Vec::new();
    for sp in app.state {
        if let Some(key) = sp.moved_by {
            parts.push(format!("`{key}` moves `{}`", sp.path));
        }
        if !sp.only_with.is_empty() {
            let with: Vec<String> = sp.only_with.iter().map(setting_text).collect();
            parts.push(format!("`{}` only with {}", sp.path, with.join(", ")));
        }
        if !sp.unless.is_empty() {
            let unless: Vec<String> = sp.unless.iter().map(setting_text).collect();
            parts.push(format!(
                "`{}` not reported with {}",
                sp.path,
                unless.join(", ")
            ));
        }
    }
    for s in app.sessions {
        let mut found: Vec<String> = s
            .keys
            .iter()
            .map(|k| {
                if k.chars().any(|c| c.is_ascii_lowercase()) && !k.contains("__") {
                    format!("`--{k}={}`", s.values.join("/"))
                } else {
                    format!("`{k}={}`", s.values.join("/"))
                }
            })
            .collect();
        found.extend(s.args.iter().map(|a| format!("argument `{a}`")));
        parts.push(format!("sessions: {} ({})", found.join(" or "), s.means));
    }
    if parts.is_empty() {
        "·".to_string()
    } else {
        parts.join("; ")
    }
}

/// The application catalogue section of `docs/rules.md`.
fn render_app_catalogue<W: Write>(out: &mut W) -> io::Result<()> {
    let apps = app_catalogue();
    writeln!(out, "## Application catalogue")?;
    writeln!(out)?;
    writeln!(
        out,
        "`local-upload-dir` and `in-memory-session` also know where {} well-known web \
         applications keep state (`src/rules/apps.rs`), each entry taken from the documentation \
         linked in the table. Only the container whose image is the app is judged (its sidecars \
         are not). An image matches when its repository path, without registry host, tag or \
         digest (and without Docker Hub's `library/`), is one listed; a listed path with a host \
         matches only that registry, and `:glob` restricts the tag.",
        apps.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Each state path is held by the deepest mount of the app's container at or above it. \
         On a writable node-local volume (`emptyDir`, `hostPath`, ephemeral, a claim that is not \
         `ReadWriteMany`, a per-pod claim template) it is reported once per volume, at its first \
         mount that holds catalogued state. With no mount at all the app writes into the \
         container's writable layer, lost whenever the pod is replaced and different in every \
         replica: reported at the container's `image`, unless `readOnlyRootFilesystem` is true \
         (then the app cannot write there). `ReadWriteMany` claims, other shared volumes and \
         read-only mounts are not reported. Settings are read from the container's environment \
         and from `key = value` files (ini `[section]` keys as `section.key`) in the ConfigMaps \
         it mounts. The upload-path patterns above skip mounts that hold a catalogued path: the \
         app's own layout decides them. Each finding names the app and the source."
    )?;
    writeln!(out)?;
    writeln!(out, "| App | Images | State paths | Settings | Source |")?;
    writeln!(out, "| --- | --- | --- | --- | --- |")?;
    for app in apps {
        let images: Vec<String> = app.images.iter().map(|i| format!("`{i}`")).collect();
        let state: Vec<String> = app
            .state
            .iter()
            .map(|sp| {
                let aliases: String = sp.aliases.iter().map(|a| format!(" (= `{a}`)")).collect();
                format!("`{}`{aliases}: {}", sp.path, sp.holds)
            })
            .collect();
        let state = if state.is_empty() {
            "·".to_string()
        } else {
            state.join("<br>")
        };
        let sources: Vec<String> = app.sources.iter().map(|s| format!("<{s}>")).collect();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            app.name,
            images.join(", "),
            state,
            app_settings_text(app),
            sources.join("<br>")
        )?;
    }
    Ok(())
}

/// The catalogue as plain text.
pub fn render_catalogue_text<W: Write>(out: &mut W) -> io::Result<()> {
    for info in catalogue() {
        writeln!(out, "{} ({})", info.name(), info.severity)?;
        writeln!(out, "  {}", info.summary)?;
        writeln!(out, "  why: {}", info.why)?;
        writeln!(out, "  fix: {}", info.remediation)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The catalogue as a JSON array of `{name, severity, summary, why, remediation, detects}`.
pub fn render_catalogue_json<W: Write>(out: &mut W) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, catalogue()).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_escapes_control_characters_from_manifests() {
        let finding = Finding {
            rule: RuleId::SessionAffinity,
            severity: Severity::High,
            kind: "Service".into(),
            namespace: Some("shop\u{202e}".into()),
            name: "x\u{1b}[2J\rfake: ok\nforged".into(),
            path: "spec.sessionAffinity".into(),
            message: "Service `x\u{1b}[2J` pins".into(),
            remediation: "r".into(),
            file: Some("a\u{7}.yaml".into()),
            line: Some(3),
            waived: true,
            waiver_reason: Some("why\r\nnot".into()),
        };
        let mut out = Vec::new();
        let written = render_text(&[finding], &mut out, TextOptions::default());
        assert!(written.is_ok());
        let text = String::from_utf8_lossy(&out);
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{text:?}"
        );
        // Header, `at`, `waived` and the summary: nothing forged.
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains(r"x\u{1b}[2J\rfake: ok\nforged"), "{text}");
        assert!(text.starts_with(r"a\u{7}.yaml:3: "), "{text}");
        assert_eq!(escape_text("plain"), "plain");
    }
}
