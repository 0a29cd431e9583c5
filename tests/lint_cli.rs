//! The real `stateless-operator lint` / `rules` binary on small fixtures:
//! exit codes, JSON field names, SARIF shape, read errors, stdin, Lists.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(name)
        .display()
        .to_string()
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stateless-operator"));
    cmd.env_remove("NO_COLOR");
    cmd
}

fn lint(args: &[&str]) -> Output {
    bin()
        .arg("lint")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run stateless-operator")
}

fn lint_stdin(args: &[&str], input: &str) -> Output {
    let mut child = bin()
        .arg("lint")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stateless-operator");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn json_findings(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => items,
        other => panic!("stdout is not a JSON array: {other:?}\n{text}"),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn clean_manifest_exits_zero() {
    let out = lint(&[&fixture("clean.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no findings"));
}

#[test]
fn findings_exit_one_with_exact_json_fields_and_field_lines() {
    let file = fixture("sticky.yaml");
    let out = lint(&["--format", "json", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let findings = json_findings(&out);
    let affinity = findings
        .iter()
        .find(|f| f["rule"] == "session-affinity")
        .expect("session-affinity finding");
    let mut keys: Vec<&str> = affinity
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "file",
            "kind",
            "line",
            "message",
            "name",
            "namespace",
            "path",
            "remediation",
            "rule",
            "severity",
            "waived"
        ]
    );
    assert_eq!(affinity["kind"], "Service");
    assert_eq!(affinity["namespace"], Value::Null);
    assert_eq!(affinity["path"], "spec.sessionAffinity");
    assert_eq!(affinity["file"], file.as_str());
    // Line 8 is `  sessionAffinity: ClientIP`.
    assert_eq!(affinity["line"], 8);
    assert_eq!(affinity["waived"], false);
    // The apps/v1beta2 Deployment without `replicas`: the line of its `spec:`.
    let single = findings
        .iter()
        .find(|f| f["rule"] == "single-replica")
        .expect("single-replica finding");
    assert_eq!(
        (single["kind"].as_str(), single["line"].as_u64()),
        (Some("Deployment"), Some(21))
    );
}

#[test]
fn min_severity_rule_and_skip_filter_findings() {
    let file = fixture("sticky.yaml");
    let out = lint(&["--format", "json", "--min-severity", "high", &file]);
    let rules: Vec<Value> = json_findings(&out)
        .iter()
        .map(|f| f["rule"].clone())
        .collect();
    assert_eq!(rules, ["session-affinity"]);
    let out = lint(&["--format", "json", "--rule", "writable-root-fs", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json_findings(&out)
            .iter()
            .all(|f| f["rule"] == "writable-root-fs")
    );
    let out = lint(&[
        "--skip",
        "session-affinity",
        "--skip",
        "single-replica",
        "--skip",
        "writable-root-fs",
        &file,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn unknown_rule_is_a_usage_error_listing_valid_names() {
    let out = lint(&["--rule", "sticky-sessions", &fixture("clean.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("sticky-sessions"), "{err}");
    for name in ["session-affinity", "sticky-ingress", "in-process-scheduler"] {
        assert!(err.contains(name), "{err}");
    }
    let out = lint(&["--min-severity", "critical", &fixture("clean.yaml")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn malformed_document_reports_file_and_line_and_lints_the_rest() {
    let file = fixture("malformed.yaml");
    let out = lint(&["--format", "json", &file]);
    assert_eq!(out.status.code(), Some(2), "read errors win over findings");
    let err = stderr(&out);
    let prefix = format!("{file}:15: ");
    assert!(err.lines().any(|l| l.starts_with(&prefix)), "{err}");
    let names: Vec<Value> = json_findings(&out)
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, ["first", "third"]);
}

#[test]
fn missing_file_is_a_read_error() {
    let out = lint(&[&fixture("does-not-exist.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does-not-exist.yaml: cannot read"));
}

#[test]
fn stdin_with_dash_and_without_paths() {
    let input = std::fs::read_to_string(fixture("sticky.yaml")).expect("fixture");
    for args in [&["--format", "json", "-"][..], &["--format", "json"][..]] {
        let out = lint_stdin(args, &input);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let findings = json_findings(&out);
        let f = findings
            .iter()
            .find(|f| f["rule"] == "session-affinity")
            .expect("finding");
        assert_eq!(
            (f["file"].as_str(), f["line"].as_u64()),
            (Some("-"), Some(8))
        );
    }
}

#[test]
fn lists_are_flattened_including_nested_lists() {
    let out = lint(&["--format", "json", &fixture("list.json")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let got: Vec<(String, String, u64)> = json_findings(&out)
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["kind"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("sticky-ingress".to_string(), "Ingress".to_string(), 11),
            ("session-affinity".to_string(), "Service".to_string(), 25),
        ]
    );
}

#[test]
fn sarif_has_the_shape_github_accepts() {
    let out = lint(&["--format", "sarif", &fixture("sticky.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    assert!(
        log["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif-2.1.0"))
    );
    let driver = &log["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "stateless-operator");
    let rules = driver["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 10);
    for r in rules {
        for key in ["id", "shortDescription", "fullDescription", "help"] {
            assert!(!r[key].is_null(), "rule {} lacks {key}", r["id"]);
        }
    }
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for r in results {
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap_or("")));
        assert!(r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().expect("uri");
        assert!(!uri.starts_with('/'), "uri must be relative: {uri}");
        assert!(uri.ends_with("tests/fixtures/lint/sticky.yaml"), "{uri}");
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l >= 1));
        let id = r["ruleId"].as_str().expect("ruleId");
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], id);
    }
    let high = results
        .iter()
        .find(|r| r["ruleId"] == "session-affinity")
        .expect("session-affinity");
    assert_eq!(high["level"], "error");
}

#[test]
fn waived_findings_are_shown_but_do_not_fail() {
    let out = lint(&["--format", "json", &fixture("waived.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    let findings = json_findings(&out);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["waived"], true);
    assert_eq!(
        findings[0]["waiver_reason"],
        "websocket sessions, moving to Redis in Q3"
    );
    let out = lint(&[&fixture("waived.yaml")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(waived)") && text.contains("1 waived"),
        "{text}"
    );
    let out = lint(&["--format", "sarif", &fixture("waived.yaml")]);
    let log: Value = serde_json::from_slice(&out.stdout).expect("SARIF");
    assert_eq!(
        log["runs"][0]["results"][0]["suppressions"][0]["kind"],
        "inSource"
    );
}

#[test]
fn directories_are_searched_recursively_for_manifests_only() {
    let out = lint(&["--format", "json", &fixture("dir")]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "notes.txt must be skipped: {}",
        stderr(&out)
    );
    let mut files: Vec<String> = json_findings(&out)
        .iter()
        .filter_map(|f| {
            f["file"]
                .as_str()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
        })
        .collect();
    files.dedup();
    assert_eq!(files, ["a.yaml", "b.yml"]);
}

#[test]
fn text_output_is_plain_when_not_a_terminal() {
    let out = lint(&[&fixture("sticky.yaml")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'), "{text}");
    assert!(
        text.contains("sticky.yaml:8: high[session-affinity] Service/shop"),
        "{text}"
    );
    assert!(text.contains("fix: "));
}

#[test]
fn rules_command_formats() {
    for (format, needle) in [
        ("text", "session-affinity (high)"),
        ("markdown", "# Statelessness rules"),
        ("json", "\"remediation\""),
    ] {
        let out = bin()
            .args(["rules", "--format", format])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(needle),
            "{format}"
        );
    }
    let out = bin()
        .args(["rules", "--format", "json"])
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            "session-affinity",
            "sticky-ingress",
            "host-path",
            "local-upload-dir",
            "pvc-app-tier",
            "in-memory-session",
            "single-replica",
            "writable-root-fs",
            "in-process-scheduler",
            "unknown-waiver"
        ]
    );
}

/// The 1-based line of the first line of `file` that, trimmed, is `text`.
fn line_of(file: &str, text: &str) -> u64 {
    let content = std::fs::read_to_string(file).expect("fixture");
    content
        .lines()
        .position(|l| l.trim() == text)
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{file} has no line `{text}`"))
}

#[test]
fn in_memory_sessions_are_reported_at_the_setting() {
    let app = fixture("session-memory-app.yaml");
    let deployment = fixture("session-file-deployment.yaml");
    let out = lint(&["--format", "json", &app, &deployment]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let got: Vec<(String, String, u64, String)> = json_findings(&out)
        .iter()
        .filter(|f| f["rule"] == "in-memory-session")
        .map(|f| {
            (
                f["file"].as_str().unwrap_or("").to_string(),
                format!(
                    "{}/{}",
                    f["kind"].as_str().unwrap_or(""),
                    f["name"].as_str().unwrap_or("")
                ),
                f["line"].as_u64().unwrap_or(0),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let at: Vec<(&str, &str, u64)> = got
        .iter()
        .map(|(file, obj, line, _)| (file.as_str(), obj.as_str(), *line))
        .collect();
    assert_eq!(
        at,
        [
            (
                deployment.as_str(),
                "Deployment/shop",
                line_of(&deployment, "value: file")
            ),
            (
                deployment.as_str(),
                "Deployment/session-demo",
                line_of(&deployment, "- --session-store")
            ),
            (
                app.as_str(),
                "StatelessApp/session-demo",
                line_of(&app, "value: memory")
            ),
        ]
    );
    assert!(got[0].3.contains("Container `php`") && got[0].3.contains("`SESSION_DRIVER=file`"));
    assert!(
        got[1].3.contains("argument `--session-store memory`"),
        "{}",
        got[1].3
    );
    assert!(
        got[2].3.contains("env `SESSION_STORE=memory`"),
        "{}",
        got[2].3
    );
    // CACHE_DRIVER=file and SESSION_LIFETIME are not sessions.
    assert!(
        got.iter()
            .all(|g| !g.3.contains("CACHE_DRIVER") && !g.3.contains("LIFETIME"))
    );
    // Text output: `file:line: high[in-memory-session] ...` and the fix.
    let out = lint(&["--rule", "in-memory-session", &app]);
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!(
        "{app}:{}: high[in-memory-session] StatelessApp/demo/session-demo: ",
        line_of(&app, "value: memory")
    );
    assert!(text.lines().any(|l| l.starts_with(&prefix)), "{text}");
    assert!(
        text.contains("fix: ") && text.contains("REDIS_URL"),
        "{text}"
    );
}

#[test]
fn redis_sessions_are_not_reported() {
    let out = lint(&["--format", "json", &fixture("session-redis-app.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let findings = json_findings(&out);
    assert!(
        findings.iter().all(|f| f["rule"] != "in-memory-session"),
        "{findings:?}"
    );
}

/// The session demo's manifests: `lint` reports exactly the anti-patterns
/// the session proof measures (sessions in memory; ClientIP affinity in front
/// of the sticky variant), at their lines, and nothing of either for the
/// managed-store manifest.
#[test]
fn session_demo_manifests_report_what_the_session_proof_measures() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/session-demo");
    let path = |f: &str| dir.join(f).display().to_string();
    let (app, memory, sticky) = (path("app.yaml"), path("memory.yaml"), path("sticky.yaml"));
    let out = lint(&["--format", "json", &app, &memory, &sticky]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut got: Vec<(String, String, String, u64)> = json_findings(&out)
        .iter()
        .filter(|f| f["rule"] == "in-memory-session" || f["rule"] == "session-affinity")
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                format!(
                    "{}/{}",
                    f["kind"].as_str().unwrap_or(""),
                    f["name"].as_str().unwrap_or("")
                ),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    let want = |rule: &str, file: &str, obj: &str, line: &str| {
        (
            rule.to_string(),
            file.to_string(),
            obj.to_string(),
            line_of(file, line),
        )
    };
    let mut expected = vec![
        want(
            "in-memory-session",
            &memory,
            "StatelessApp/session-demo-memory",
            "value: memory",
        ),
        want(
            "in-memory-session",
            &sticky,
            "StatelessApp/session-demo-sticky",
            "value: memory",
        ),
        want(
            "session-affinity",
            &sticky,
            "Service/session-demo-sticky-affinity",
            "sessionAffinity: ClientIP",
        ),
    ];
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn lone_portless_host_path_deployment_reports_host_path_and_exits_one() {
    // One changed file, as pre-commit hooks lint it: no containerPort, no
    // Service selecting the Deployment.
    let file = fixture("host-path-no-ports.yaml");
    let out = lint(&["--format", "json", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rules: Vec<(String, u64)> = json_findings(&out)
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(rules, [("host-path".to_string(), 19)]);
}

#[test]
fn misspelt_waiver_is_a_low_finding_naming_the_valid_rules() {
    let input = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations:\n    \
                 stateless.dev/allow: session-afinity\nspec:\n  selector: {app: web}\n  \
                 sessionAffinity: ClientIP\n";
    let out = lint_stdin(&["--format", "json"], input);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let findings = json_findings(&out);
    let rules: Vec<(&str, bool)> = findings
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default(),
                f["waived"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    // The typo waives nothing: session-affinity still counts.
    assert_eq!(
        rules,
        [("unknown-waiver", false), ("session-affinity", false)]
    );
    let unknown = &findings[0];
    assert_eq!(
        (unknown["severity"].as_str(), unknown["line"].as_u64()),
        (Some("low"), Some(6))
    );
    let message = unknown["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`session-afinity`") && message.contains("session-affinity,"),
        "{message}"
    );
}

#[test]
fn cr_only_line_ends_lose_no_document() {
    let input = "apiVersion: v1\rkind: Service\rmetadata: {name: a}\rspec: {selector: {app: a}, \
                 sessionAffinity: ClientIP}\r---\rapiVersion: v1\rkind: Service\rmetadata: {name: b}\r\
                 spec: {selector: {app: b}, sessionAffinity: ClientIP}\r";
    let out = lint_stdin(&["--format", "json"], input);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines: Vec<u64> = json_findings(&out)
        .iter()
        .filter_map(|f| f["line"].as_u64())
        .collect();
    assert_eq!(lines, [4, 9]);
}

#[test]
fn invalid_utf8_names_line_and_offset_and_lints_the_other_documents() {
    let dir = std::env::temp_dir().join(format!("lint-utf8-{}", std::process::id()));
    let file = dir.join("bin.yaml");
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::write(
            &file,
            b"apiVersion: v1\nkind: Service\nmetadata: {name: \"a\xff\"}\n---\napiVersion: v1\n\
              kind: Service\nmetadata: {name: b}\nspec: {selector: {app: b}, sessionAffinity: ClientIP}\n",
        )
    });
    assert!(written.is_ok(), "{written:?}");
    let path = file.display().to_string();
    let out = lint(&["--format", "json", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2), "read errors win over findings");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:3: not valid UTF-8 text (byte offset 48)")),
        "{err}"
    );
    let names: Vec<Value> = json_findings(&out)
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, ["b"]);
}
