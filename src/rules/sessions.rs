//! Session-store vocabulary for `in-memory-session`: which settings keep
//! sessions inside the pod.
//!
//! Everything is judged one *setting* (`key = value`) at a time, wherever the
//! engine finds it: an environment variable (direct, `configMapKeyRef`,
//! `envFrom`), a key of a mounted ConfigMap, a command-line argument
//! (`--session-store=memory`, `--session-store memory`, `-Dsession.store=memory`,
//! `SESSION_STORE=memory` in `sh -c`), or an entry of a configuration file in a
//! mounted ConfigMap (`.env`, ini/TOML sections, PHP ini and FPM pools,
//! properties, YAML, JSON, a Rails `session_store` line, express-session
//! code). Pure string functions, unit-tested in `tests.rs`.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::model::scalar_text;

/// Where a pod-local session backend keeps the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Process memory (`memory`, `MemoryStore`, Laravel `array`, `apc`).
    Memory,
    /// Files on the container's own disk (`file`, `files`, `filesystem`).
    Disk,
    /// Local to the pod without saying how (`local`, Keycloak `KC_CACHE=local`).
    Pod,
    /// "The cache", and the cache is in memory or on local disk.
    LocalCache,
}

impl Place {
    /// Words for a finding message.
    pub fn describe(self) -> &'static str {
        match self {
            Place::Memory => "in process memory",
            Place::Disk => "in files on the pod's own disk",
            Place::Pod => "inside the pod",
            Place::LocalCache => "in a cache that lives inside the pod",
        }
    }
}

/// A setting that keeps sessions inside the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSession {
    /// The setting as written (`SESSION_STORE=memory`, `--session-store=memory`,
    /// `session.save_handler = files`).
    pub setting: String,
    pub place: Place,
    /// For [`Place::LocalCache`]: the setting that makes the cache local.
    pub because: Option<String>,
}

/// What the pod's other settings say, for session backends that keep
/// sessions in "the cache" (Django `...backends.cache`, Rails `:cache_store`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionContext {
    /// A setting that puts the app's cache in memory or on local disk.
    pub local_cache: Option<String>,
}

impl SessionContext {
    /// Remember `key = value` (shown as `shown`) if it makes the cache local;
    /// the first such setting wins.
    pub fn observe(&mut self, key: &str, value: &str, shown: &str) {
        if self.local_cache.is_none() && local_cache_setting(key, value) {
            self.local_cache = Some(shown.trim().to_string());
        }
    }
}

/// Last word of a session-store key: what selects the backend.
const SELECTORS: &[&str] = &[
    "STORE", "DRIVER", "BACKEND", "TYPE", "ENGINE", "STORAGE", "HANDLER", "PROVIDER",
];
/// Words allowed between `SESSION` and the selector (`SESSION_STORE_TYPE`,
/// `session.save_handler`).
const QUALIFIERS: &[&str] = &["STORE", "STORAGE", "SAVE", "BACKEND"];

/// Backend names that keep sessions in process memory. Compared without
/// `-`, `_` and spaces, case-insensitively (`in-memory`, `memory_store`,
/// `MemoryStore`).
const MEMORY_VALUES: &[&str] = &[
    "memory",
    "inmemory",
    "mem",
    "memstore",
    "memorystore",
    "localmemory",
    "locmem",
    // Laravel: per-request PHP array; APC/APCu: the server's shared memory.
    "array",
    "apc",
    "apcu",
];
/// Backend names that keep sessions in local files.
const DISK_VALUES: &[&str] = &[
    "file",
    "files",
    "filesystem",
    "filestore",
    "filebased",
    "disk",
    "localdisk",
    "localfile",
    "localfiles",
];
/// Backends that store sessions in the app's cache (local only if the cache is).
const CACHE_VALUES: &[&str] = &["cache", "cachestore"];

/// Lowercase, without surrounding whitespace and quotes, a trailing `,` or
/// `;`, an inline ` #`/` ;` comment, or a leading `:` (a Ruby symbol).
fn norm(value: &str) -> String {
    let mut v = value.trim();
    for marker in [" #", "\t#", " ;", "\t;"] {
        if let Some(i) = v.find(marker) {
            v = &v[..i];
        }
    }
    let v = v.trim().trim_end_matches([',', ';']).trim();
    let v = v.trim_matches(|c| c == '"' || c == '\'').trim();
    let v = v.strip_prefix(':').unwrap_or(v);
    v.to_ascii_lowercase()
}

fn compact(v: &str) -> String {
    v.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect()
}

/// Words of a setting's key, uppercase: split at anything not a letter or
/// digit and at camelCase humps; `sessionstore` is `SESSION STORE`.
pub fn key_words(key: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in key.chars() {
        if ch.is_ascii_alphanumeric() {
            if ch.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
                raw.push(std::mem::take(&mut cur));
            }
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
            cur.push(ch.to_ascii_uppercase());
        } else {
            if !cur.is_empty() {
                raw.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
        }
    }
    if !cur.is_empty() {
        raw.push(cur);
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    for word in raw {
        let split = ["SESSIONS", "SESSION", "SAVE"].iter().find_map(|head| {
            let tail = word.strip_prefix(head)?;
            SELECTORS
                .contains(&tail)
                .then(|| (head.to_string(), tail.to_string()))
        });
        match split {
            Some((head, tail)) => {
                out.push(head);
                out.push(tail);
            }
            None => out.push(word),
        }
    }
    out
}

/// A key that selects the session backend: `SESSION`/`SESSIONS`, then up to
/// two qualifiers, then a selector word, with any prefix (`SPRING_`, `GF_`,
/// `GITEA__session__`, `php_admin_value[`). Keys about session cookies are not.
fn is_session_key(words: &[String]) -> bool {
    let Some(i) = words
        .iter()
        .rposition(|w| w == "SESSION" || w == "SESSIONS")
    else {
        return false;
    };
    let Some((last, middle)) = words[i + 1..].split_last() else {
        return false;
    };
    middle.len() <= 2
        && SELECTORS.contains(&last.as_str())
        && middle.iter().all(|m| QUALIFIERS.contains(&m.as_str()))
        && !words[..i].iter().any(|w| w == "COOKIE" || w == "COOKIES")
}

/// Whether `key` is one of the keys that select a session backend
/// (`SESSION_STORE`, `session.save_handler`, `--session-store`, ...).
#[cfg(test)]
pub fn session_store_key(key: &str) -> bool {
    is_session_key(&key_words(key))
}

enum Backend {
    Local(Place),
    Cache,
}

fn backend(value: &str) -> Option<Backend> {
    let v = norm(value);
    if v.is_empty() {
        return None;
    }
    if let Some((scheme, _)) = v.split_once("://") {
        return match scheme {
            "memory" | "mem" | "inmemory" | "locmem" => Some(Backend::Local(Place::Memory)),
            "file" => Some(Backend::Local(Place::Disk)),
            _ => None,
        };
    }
    let word = |c: &str| {
        if MEMORY_VALUES.contains(&c) {
            Some(Backend::Local(Place::Memory))
        } else if DISK_VALUES.contains(&c) {
            Some(Backend::Local(Place::Disk))
        } else if c == "local" {
            Some(Backend::Local(Place::Pod))
        } else if CACHE_VALUES.contains(&c) {
            Some(Backend::Cache)
        } else {
            None
        }
    };
    if let Some(b) = word(&compact(&v)) {
        return Some(b);
    }
    // A dotted module path: `django.contrib.sessions.backends.file`. Only its
    // last part counts, and `local` is left out (`redis.local` is a host).
    let parts: Vec<&str> = v.split('.').collect();
    let module = parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !module {
        return None;
    }
    let last = compact(parts[parts.len() - 1]);
    match last.as_str() {
        "local" => None,
        _ => word(&last),
    }
}

/// Whether `key = value` puts the app's cache in memory or on local disk:
/// Django `LocMemCache` / `FileBasedCache` (in any value, e.g. a `CACHES`
/// JSON) or `CACHE_BACKEND=locmem://`, Rails `cache_store` `memory_store` /
/// `file_store`, `CACHE_DRIVER=file|array`, ...
pub fn local_cache_setting(key: &str, value: &str) -> bool {
    let v = norm(value);
    if v.contains("locmemcache") || v.contains("filebasedcache") {
        return true;
    }
    let words = key_words(key);
    let cache_key = words.iter().any(|w| w == "CACHE" || w == "CACHES") && !is_session_key(&words);
    cache_key
        && matches!(
            backend(value),
            Some(Backend::Local(Place::Memory | Place::Disk))
        )
}

/// If the setting `key = value` keeps sessions inside the pod, what it is.
/// Cookie, JWT, Redis, Memcached, database and DynamoDB backends keep
/// nothing in the pod and are not reported, nor are keys that do not select
/// a backend (`SESSION_TIMEOUT`, `SESSION_COOKIE_NAME`, `SESSION_SECRET`).
pub fn session_setting(key: &str, value: &str, ctx: &SessionContext) -> Option<LocalSession> {
    let words = key_words(key);
    let setting = || format!("{}={}", key.trim(), value.trim());
    // Keycloak: `local` Infinispan caches keep authentication sessions per pod.
    if words == ["KC", "CACHE"] {
        return (norm(value) == "local").then(|| LocalSession {
            setting: setting(),
            place: Place::Pod,
            because: None,
        });
    }
    if !is_session_key(&words) {
        return None;
    }
    match backend(value)? {
        Backend::Local(place) => Some(LocalSession {
            setting: setting(),
            place,
            because: None,
        }),
        Backend::Cache => ctx.local_cache.as_ref().map(|c| LocalSession {
            setting: setting(),
            place: Place::LocalCache,
            because: Some(c.clone()),
        }),
    }
}

/// Whether an environment variable holds command-line options
/// (`JAVA_OPTS`, `JAVA_TOOL_OPTIONS`, `APP_ARGS`, `EXTRA_FLAGS`).
pub fn options_var(name: &str) -> bool {
    key_words(name).last().is_some_and(|w| {
        matches!(
            w.as_str(),
            "OPTS" | "OPTIONS" | "ARGS" | "ARGUMENTS" | "FLAGS"
        )
    })
}

/// One `key=value` (or `--flag value`) found on a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSetting {
    /// Index of the argv element it is in (the flag's, for `--flag value`).
    pub index: usize,
    pub key: String,
    pub value: String,
    /// As written: `--session-store=memory`, `--session-store memory`.
    pub text: String,
}

/// Words of a command line, each with the argv element it came from: split at
/// whitespace and shell punctuation, quotes dropped.
fn arg_words(argv: &[&str]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, arg) in argv.iter().enumerate() {
        for w in arg.split(|c: char| c.is_whitespace() || ";&|()`".contains(c)) {
            let w = w.replace(['"', '\''], "");
            if !w.is_empty() {
                out.push((i, w));
            }
        }
    }
    out
}

/// The key of a flag: `--session-store` → `session-store`, Java
/// `-Dsession.store` → `session.store`.
fn flag_key(word: &str) -> &str {
    match word.strip_prefix("-D") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('-') => rest,
        _ => word.trim_start_matches('-'),
    }
}

/// Every setting on a command line: `--key=value`, `-Dkey=value`,
/// `KEY=value` (environment assignments in `sh -c`, PHP `-d key=value`) and
/// `--key value`.
pub fn argv_settings(argv: &[&str]) -> Vec<ArgSetting> {
    let words = arg_words(argv);
    let mut out = Vec::new();
    for (j, (i, w)) in words.iter().enumerate() {
        if let Some((k, v)) = w.split_once('=') {
            let key = flag_key(k);
            if !key.is_empty() {
                out.push(ArgSetting {
                    index: *i,
                    key: key.to_string(),
                    value: v.to_string(),
                    text: w.clone(),
                });
            }
        } else if w.len() > 1
            && w.starts_with('-')
            && let Some((_, next)) = words.get(j + 1)
            && !next.starts_with('-')
            && !next.contains('=')
        {
            out.push(ArgSetting {
                index: *i,
                key: flag_key(w).to_string(),
                value: next.clone(),
                text: format!("{w} {next}"),
            });
        }
    }
    out
}

/// The first argument that keeps sessions inside the pod, with the index of
/// its argv element.
pub fn session_in_argv(argv: &[&str], ctx: &SessionContext) -> Option<(usize, LocalSession)> {
    argv_settings(argv).into_iter().find_map(|a| {
        session_setting(&a.key, &a.value, ctx).map(|mut hit| {
            hit.setting = a.text.clone();
            (a.index, hit)
        })
    })
}

/// A setting inside a configuration file.
struct TextSetting {
    key: String,
    value: String,
    /// As written (the line, or `a.b.c: value` for a nested YAML/JSON entry).
    text: String,
}

/// express-session's built-in `MemoryStore`, or the `memorystore` package.
static MEMORY_STORE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"\bnew\s+(?:[A-Za-z_$][\w$]*\.)*MemoryStore\s*\(|\brequire\s*\(\s*["']memorystore["']\s*\)|\bfrom\s+["']memorystore["']"#,
    )
    .ok()
});
/// Rails `config.session_store :memory_store` / `config.cache_store = :memory_store`.
static RAILS_STORE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\b(session_store|cache_store)\b[ \t]*(?:=[ \t]*)?\(?[ \t]*:([A-Za-z_]+)").ok()
});
/// A key in a `key = value` / `key: value` line.
static KEY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.\-\[\]]*$").ok());

fn structured(name: &str, text: &str) -> Option<Value> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") || text.trim_start().starts_with('{') {
        return serde_json::from_str(text).ok();
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        let mut options = serde_saphyr::Options::default();
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
        options.with_snippet = false;
        return serde_saphyr::from_str_with_options(text, options).ok();
    }
    None
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<TextSetting>, depth: usize) {
    if depth > 32 || out.len() > 10_000 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(prefix, item, out, depth + 1);
            }
        }
        other => {
            if let Some(s) = scalar_text(other)
                && !prefix.is_empty()
            {
                out.push(TextSetting {
                    key: prefix.to_string(),
                    value: s.to_string(),
                    text: format!("{prefix}: {s}"),
                });
            }
        }
    }
}

/// `key = value` and `key: value` lines, with the `[section]` they are in
/// (`[session]` `provider = memory` is `session.provider`), `export KEY=value`,
/// and Apache `php_value key value`.
fn line_settings(text: &str, out: &mut Vec<TextSetting>) {
    let Some(key_re) = KEY.as_ref() else { return };
    let mut section: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';', '!']) || line.starts_with("//") {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            let inner = line[1..line.len() - 1].trim();
            section = key_re.is_match(inner).then(|| inner.to_string());
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim();
        let mut parts = line.split_whitespace();
        let (key, value) = match parts.next() {
            Some("php_value" | "php_flag" | "php_admin_value" | "php_admin_flag") => {
                match (parts.next(), parts.next()) {
                    (Some(k), Some(v)) => (k, v),
                    _ => continue,
                }
            }
            _ => {
                let Some(at) = line.find(['=', ':']) else {
                    continue;
                };
                (line[..at].trim(), &line[at + 1..])
            }
        };
        if !key_re.is_match(key) {
            continue;
        }
        let (full, shown) = match &section {
            Some(s) => (format!("{s}.{key}"), format!("[{s}] {line}")),
            None => (key.to_string(), line.to_string()),
        };
        out.push(TextSetting {
            key: full,
            value: value.to_string(),
            text: shown,
        });
    }
}

/// The first setting in a configuration file (ConfigMap key `name`, content
/// `text`) that keeps sessions inside the pod. `ctx` is what the pod's
/// environment says about its cache; the file's own cache settings are added.
pub fn session_in_text(name: &str, text: &str, ctx: &SessionContext) -> Option<LocalSession> {
    // Every session key has `session` in it (and the express stores
    // `MemoryStore`): most files (dashboards, rules) can be skipped unparsed.
    let lower = text.to_ascii_lowercase();
    if !["session", "memorystore", "kc_cache"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return None;
    }
    let mut settings = Vec::new();
    if let Some(v) = structured(name, text) {
        flatten("", &v, &mut settings, 0);
    }
    line_settings(text, &mut settings);
    if let Some(re) = RAILS_STORE.as_ref() {
        for cap in re.captures_iter(text) {
            if let (Some(m), Some(k), Some(v)) = (cap.get(0), cap.get(1), cap.get(2)) {
                settings.push(TextSetting {
                    key: k.as_str().to_string(),
                    value: v.as_str().to_string(),
                    text: m.as_str().trim().to_string(),
                });
            }
        }
    }
    let mut ctx = ctx.clone();
    for s in &settings {
        ctx.observe(&s.key, &s.value, &s.text);
    }
    let hit = settings.iter().find_map(|s| {
        session_setting(&s.key, &s.value, &ctx).map(|mut hit| {
            hit.setting = s.text.clone();
            hit
        })
    });
    if hit.is_some() {
        return hit;
    }
    let m = MEMORY_STORE.as_ref()?.find(text)?;
    Some(LocalSession {
        setting: format!("express-session `{}`", m.as_str().trim()),
        place: Place::Memory,
        because: None,
    })
}
