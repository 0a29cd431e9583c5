//! Reading manifests: files, directories and stdin; multi-document YAML
//! streams, JSON, `kind: List`; document and field line numbers.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{
    DefaultMessageFormatter, DuplicateKeyPolicy, MessageFormatter, Options, SnippetMode, Spanned,
};

use super::render::escape_text;
use crate::rules::{Finding, Object, sort_findings};

/// A file or document that could not be read. Displays as `file:line: message`,
/// with control characters of file names and manifest text escaped (these
/// go to a terminal or CI log as they are).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {source}", escape_text(file))]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}:{line}: not valid UTF-8 text (byte offset {offset}); this document is skipped, \
         the others are read",
        escape_text(file)
    )]
    NotUtf8 {
        file: String,
        line: usize,
        /// 0-based offset in the file of the first invalid byte.
        offset: usize,
    },
    #[error("{}:{line}: invalid YAML: {}", escape_text(file), escape_text(message))]
    Yaml {
        file: String,
        line: usize,
        message: String,
    },
    #[error(
        "{}:{line}: document is a {found}, not a Kubernetes object (mapping)",
        escape_text(file)
    )]
    NotAnObject {
        file: String,
        line: usize,
        found: &'static str,
    },
    #[error(
        "{}:{line}: `items` of a {} is not a list",
        escape_text(file),
        escape_text(kind)
    )]
    BadList {
        file: String,
        line: usize,
        kind: String,
    },
}

impl ReadError {
    /// The file the error is in (`-` for stdin).
    pub fn file(&self) -> &str {
        match self {
            ReadError::Io { file, .. }
            | ReadError::NotUtf8 { file, .. }
            | ReadError::Yaml { file, .. }
            | ReadError::NotAnObject { file, .. }
            | ReadError::BadList { file, .. } => file,
        }
    }

    /// 1-based line, when the error is about one document.
    pub fn line(&self) -> Option<usize> {
        match self {
            ReadError::Io { .. } => None,
            ReadError::NotUtf8 { line, .. }
            | ReadError::Yaml { line, .. }
            | ReadError::NotAnObject { line, .. }
            | ReadError::BadList { line, .. } => Some(*line),
        }
    }
}

/// Lines of every node of one object, keyed like the JSON value.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineTree {
    line: usize,
    children: Children,
}

#[derive(Debug, Clone, Default)]
enum Children {
    #[default]
    Leaf,
    Map(Vec<(String, LineTree)>),
    Seq(Vec<LineTree>),
}

impl LineTree {
    fn shifted(mut self, offset: usize) -> Self {
        self.shift(offset);
        self
    }

    fn shift(&mut self, offset: usize) {
        self.line += offset;
        match &mut self.children {
            Children::Leaf => {}
            Children::Map(m) => m.iter_mut().for_each(|(_, t)| t.shift(offset)),
            Children::Seq(s) => s.iter_mut().for_each(|t| t.shift(offset)),
        }
    }

    fn key(&self, key: &str) -> Option<&LineTree> {
        match &self.children {
            Children::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, t)| t),
            _ => None,
        }
    }

    fn item(&self, i: usize) -> Option<&LineTree> {
        match &self.children {
            Children::Seq(s) => s.get(i),
            _ => None,
        }
    }

    /// Line of the deepest existing node along a finding path such as
    /// `spec.template.spec.volumes[0].hostPath` or
    /// `metadata.annotations["a.b/c"]`.
    pub(crate) fn locate(&self, path: &str) -> usize {
        let mut node = self;
        for seg in parse_path(path) {
            let next = match seg {
                Segment::Key(k) => node.key(&k),
                Segment::Index(i) => node.item(i),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.line
    }
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Parse a finding path: dotted keys, `[n]` indexes and `["quoted"]` keys.
fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix('[') {
            if r.starts_with('"') {
                // A JSON string, then `]`.
                let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
                match de.next() {
                    Some(Ok(key)) => {
                        let used = de.byte_offset();
                        out.push(Segment::Key(key));
                        rest = r[used..].strip_prefix(']').unwrap_or(&r[used..]);
                    }
                    _ => break,
                }
            } else {
                let end = r.find(']').unwrap_or(r.len());
                match r[..end].parse() {
                    Ok(i) => out.push(Segment::Index(i)),
                    Err(_) => break,
                }
                rest = r.get(end + 1..).unwrap_or("");
            }
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Segment::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    out
}

/// A YAML node as JSON plus the line of every node.
struct Located {
    value: Value,
    tree: LineTree,
}

/// A mapping key as text, whatever its YAML type.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_string()))
            }
            fn visit_none<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LocatedVisitor)
    }
}

struct LocatedVisitor;

fn leaf(value: Value) -> Located {
    Located {
        value,
        tree: LineTree::default(),
    }
}

impl<'de> Visitor<'de> for LocatedVisitor {
    type Value = Located;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Located, E> {
        Ok(leaf(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Located, E> {
        Ok(leaf(Value::Number(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Located, E> {
        Ok(leaf(Value::Number(v.into())))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Located, E> {
        Ok(leaf(Value::String(v.to_string())))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Located, E> {
        Ok(leaf(Value::String(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Located, E> {
        Ok(leaf(Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Located, E> {
        Ok(leaf(Value::String(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Located, E> {
        Ok(leaf(Value::String(v)))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Located, E> {
        Ok(leaf(Value::String(String::from_utf8_lossy(v).into_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Located, E> {
        Ok(leaf(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Located, E> {
        Ok(leaf(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
        Located::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
        let mut values = Vec::new();
        let mut lines = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Located>>()? {
            let line = item.referenced.line() as usize;
            values.push(item.value.value);
            lines.push(LineTree {
                line,
                children: item.value.tree.children,
            });
        }
        Ok(Located {
            value: Value::Array(values),
            tree: LineTree {
                line: 0,
                children: Children::Seq(lines),
            },
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
        let mut values = Map::new();
        let mut lines = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let val = map.next_value::<Spanned<Located>>()?;
            let key_line = key.referenced.line() as usize;
            lines.push((
                key.value.0.clone(),
                LineTree {
                    line: key_line,
                    children: val.value.tree.children,
                },
            ));
            // Duplicate keys: the last one wins, as with kubectl.
            values.insert(key.value.0, val.value.value);
        }
        Ok(Located {
            value: Value::Object(values),
            tree: LineTree {
                line: 0,
                children: Children::Map(lines),
            },
        })
    }
}

/// Objects read from one or more sources, with read errors and field lines.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every Kubernetes object read (List items flattened), in input order.
    pub objects: Vec<Object>,
    /// Files or documents that could not be read; the others were still read.
    pub errors: Vec<ReadError>,
    /// (file, object line) → line tree of that object.
    trees: HashMap<(String, usize), LineTree>,
}

impl Loaded {
    /// Append everything from `other`.
    pub fn merge(&mut self, other: Loaded) {
        self.objects.extend(other.objects);
        self.errors.extend(other.errors);
        self.trees.extend(other.trees);
    }

    /// Move each finding's `line` from its document start to the line of its
    /// `path` (or the deepest existing parent), then re-sort.
    pub fn locate(&self, findings: &mut [Finding]) {
        for f in findings.iter_mut() {
            if let (Some(file), Some(line)) = (&f.file, f.line)
                && let Some(tree) = self.trees.get(&(file.clone(), line))
            {
                let found = tree.locate(&f.path);
                if found > 0 {
                    f.line = Some(found);
                }
            }
        }
        sort_findings(findings);
    }

    fn push_value(&mut self, file: &str, value: Value, tree: LineTree) {
        let line = tree.line.max(1);
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let is_list = kind.ends_with("List") && value.get("items").is_some();
        if is_list {
            let kind = kind.to_string();
            let Value::Object(mut map) = value else {
                return;
            };
            match map.remove("items") {
                Some(Value::Array(items)) => {
                    let item_trees = match tree.key("items").map(|t| &t.children) {
                        Some(Children::Seq(s)) => s.clone(),
                        _ => Vec::new(),
                    };
                    for (i, item) in items.into_iter().enumerate() {
                        let t = item_trees.get(i).cloned().unwrap_or(LineTree {
                            line,
                            children: Children::Leaf,
                        });
                        self.push_value(file, item, t);
                    }
                }
                Some(Value::Null) | None => {}
                Some(_) => self.errors.push(ReadError::BadList {
                    file: file.to_string(),
                    line,
                    kind,
                }),
            }
            return;
        }
        match &value {
            Value::Object(_) => {}
            Value::Null => return,
            other => {
                self.errors.push(ReadError::NotAnObject {
                    file: file.to_string(),
                    line,
                    found: json_type(other),
                });
                return;
            }
        }
        self.objects
            .push(Object::with_source(value, file.to_string(), line));
        self.trees.insert((file.to_string(), line), tree);
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// A document of a YAML stream: its text and the 1-based line it starts on.
struct Doc<'a> {
    text: std::borrow::Cow<'a, str>,
    first_line: usize,
}

fn is_marker(line: &str, marker: &str) -> Option<usize> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t', '\r'])).then_some(marker.len())
}

/// Split a YAML stream at `---` / `...` lines (column 0, as YAML requires).
fn split_documents(text: &str) -> Vec<Doc<'_>> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut pending_prefix: Option<String> = None;
    let mut offset = 0;
    fn finish<'t>(
        docs: &mut Vec<Doc<'t>>,
        text: &'t str,
        from: usize,
        to: usize,
        line: usize,
        prefix: Option<String>,
    ) {
        let body = &text[from..to];
        let text = match prefix {
            Some(p) => std::borrow::Cow::Owned(format!("{p}{body}")),
            None => std::borrow::Cow::Borrowed(body),
        };
        docs.push(Doc {
            text,
            first_line: line,
        });
    }
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = n + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let sep = is_marker(line, "---").or_else(|| is_marker(line, "..."));
        if let Some(len) = sep {
            finish(
                &mut docs,
                text,
                start_byte,
                offset,
                start_line,
                pending_prefix.take(),
            );
            // Content after `---` on the same line belongs to the next document.
            let rest = &line[len..];
            let rest_trimmed = rest.trim();
            if line.starts_with("---") && !rest_trimmed.is_empty() && !rest_trimmed.starts_with('#')
            {
                pending_prefix = Some(format!("{}{}\n", " ".repeat(len), rest));
            }
            start_byte = offset + raw.len();
            start_line = if pending_prefix.is_some() {
                line_no
            } else {
                line_no + 1
            };
        } else if line.starts_with('%') {
            // A directive (%YAML, %TAG): not document content.
            finish(
                &mut docs,
                text,
                start_byte,
                offset,
                start_line,
                pending_prefix.take(),
            );
            start_byte = offset + raw.len();
            start_line = line_no + 1;
        }
        offset += raw.len();
    }
    finish(
        &mut docs,
        text,
        start_byte,
        text.len(),
        start_line,
        pending_prefix.take(),
    );
    docs.retain(|d| {
        d.text.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
    });
    docs
}

fn yaml_options() -> Options {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    options.with_snippet = false;
    options
}

/// Parser messages for people: the parser's defaults name its own API
/// (`use from_str_multiple...`) or print a Rust value (`Depth { depth: 65 }`).
struct Messages;

impl MessageFormatter for Messages {
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        match err {
            serde_saphyr::Error::Budget { breach, .. } => Cow::Owned(limit_message(breach)),
            serde_saphyr::Error::MultipleDocuments { .. } => {
                Cow::Borrowed("a second document starts here; separate documents with a `---` line")
            }
            other => DefaultMessageFormatter.format_message(other),
        }
    }
}

/// A reader limit, in words.
fn limit_message(breach: &BudgetBreach) -> String {
    let what = match breach {
        BudgetBreach::Depth { depth } => {
            format!("mappings and lists are nested {depth} levels deep")
        }
        BudgetBreach::Events { events } => format!("the document has over {events} YAML events"),
        BudgetBreach::Nodes { nodes } => format!("the document has over {nodes} values"),
        BudgetBreach::Aliases { aliases } => format!("the document uses {aliases} aliases"),
        BudgetBreach::Anchors { anchors } => format!("the document defines {anchors} anchors"),
        BudgetBreach::Documents { documents } => {
            format!("the stream has over {documents} documents")
        }
        BudgetBreach::ScalarBytes { total_scalar_bytes } => {
            format!("the document's text values add up to {total_scalar_bytes} bytes")
        }
        BudgetBreach::MergeKeys { merge_keys } => {
            format!("the document uses {merge_keys} merge keys (`<<`)")
        }
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases expand {anchors} anchors (an alias bomb?)")
        }
        BudgetBreach::SequenceUnbalanced => "the document's structure is unbalanced".to_string(),
        _ => "the document is larger or more deeply nested than a manifest can be".to_string(),
    };
    format!("{what}, more than the reader allows; is this a Kubernetes manifest?")
}

/// Line ends as YAML reads them: a lone CR (old Mac files, some editors)
/// ends a line too, so it becomes LF; CRLF is left alone.
fn normalize_line_ends(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let lone_cr = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !(0..bytes.len()).any(lone_cr) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() != Some(&'\n') {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Read one YAML (or JSON) stream. `file` is the name to report (`-` for stdin).
pub fn load_str(text: &str, file: &str) -> Loaded {
    load_text(text, file, &[])
}

/// An invalid UTF-8 sequence: 1-based line and 0-based byte offset in the file.
#[derive(Debug, Clone, Copy)]
struct BadBytes {
    line: usize,
    offset: usize,
}

/// Read a stream whose `bad` lines held invalid UTF-8 (replaced by U+FFFD):
/// the documents covering them are reported and skipped, the others read.
fn load_text(text: &str, file: &str, bad: &[BadBytes]) -> Loaded {
    let mut loaded = Loaded::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = normalize_line_ends(text);
    let docs = split_documents(&text);
    let mut reported = vec![false; bad.len()];
    for doc in docs {
        let last_line = doc.first_line + doc.text.lines().count().saturating_sub(1);
        let mut skip = false;
        for (i, b) in bad.iter().enumerate() {
            if (doc.first_line..=last_line).contains(&b.line) {
                if !skip {
                    loaded.errors.push(ReadError::NotUtf8 {
                        file: file.to_string(),
                        line: b.line,
                        offset: b.offset,
                    });
                }
                skip = true;
                reported[i] = true;
            }
        }
        if skip {
            continue;
        }
        let offset = doc.first_line - 1;
        match serde_saphyr::from_str_with_options::<Spanned<Located>>(&doc.text, yaml_options()) {
            Ok(spanned) => {
                let mut tree = spanned.value.tree.shifted(offset);
                tree.line = spanned.referenced.line() as usize + offset;
                loaded.push_value(file, spanned.value.value, tree);
            }
            Err(err) => {
                let line = err
                    .location()
                    .map(|l| l.line() as usize + offset)
                    .filter(|&l| l > offset)
                    .unwrap_or(doc.first_line);
                let message = err.render_with_options(serde_saphyr::render_options! {
                    formatter: &Messages,
                    snippets: SnippetMode::Off,
                    line_offset: offset as u64,
                });
                loaded.errors.push(ReadError::Yaml {
                    file: file.to_string(),
                    line,
                    message: message.replace('\n', " "),
                });
            }
        }
    }
    // Invalid bytes outside every document (in a comment): still an error.
    if let Some((b, _)) = bad.iter().zip(&reported).find(|(_, r)| !**r) {
        loaded.errors.push(ReadError::NotUtf8 {
            file: file.to_string(),
            line: b.line,
            offset: b.offset,
        });
    }
    loaded
}

/// Decode `bytes` as UTF-8, replacing each invalid sequence with U+FFFD and
/// noting where it was.
fn decode_lossy(bytes: &[u8]) -> (String, Vec<BadBytes>) {
    let mut text = String::with_capacity(bytes.len());
    let mut bad = Vec::new();
    let mut line = 1;
    let mut offset = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        line += valid.matches(['\n']).count();
        text.push_str(valid);
        offset += valid.len();
        let invalid = chunk.invalid();
        if !invalid.is_empty() {
            bad.push(BadBytes { line, offset });
            text.push('\u{fffd}');
            offset += invalid.len();
        }
    }
    (text, bad)
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
}

/// Expand directories (recursively, `*.yaml`, `*.yml`, `*.json`, sorted)
/// into files; files named explicitly are kept whatever their extension.
/// Each directory and each file is visited once by its canonical path, so
/// symlink loops end and a file reached by two links is read once.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<ReadError>) {
    let mut walk = Walk::default();
    for p in paths {
        if p.as_os_str() == "-" {
            walk.files.push(p.clone());
        } else if p.is_dir() {
            walk.dir(p);
        } else {
            walk.files.push(p.clone());
        }
    }
    (walk.files, walk.errors)
}

#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    errors: Vec<ReadError>,
    /// Canonical paths of the directories and files already taken.
    seen: HashSet<PathBuf>,
}

impl Walk {
    /// Whether `path` is new (by canonical path; unresolvable paths are new
    /// and fail when read).
    fn first_visit(&mut self, path: &Path) -> bool {
        match std::fs::canonicalize(path) {
            Ok(canonical) => self.seen.insert(canonical),
            Err(_) => true,
        }
    }

    fn dir(&mut self, dir: &Path) {
        if !self.first_visit(dir) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(source) => {
                self.errors.push(ReadError::Io {
                    file: dir.display().to_string(),
                    source,
                });
                return;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            if child.is_dir() {
                self.dir(&child);
            } else if is_manifest(&child) && self.first_visit(&child) {
                self.files.push(child);
            }
        }
    }
}

/// Read files, directories and `-` (stdin). An empty list reads stdin.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let stdin_only = [PathBuf::from("-")];
    let paths = if paths.is_empty() {
        &stdin_only[..]
    } else {
        paths
    };
    let (files, errors) = collect_files(paths);
    let mut loaded = Loaded {
        errors,
        ..Loaded::default()
    };
    for file in files {
        let name = file.display().to_string();
        let mut bytes = Vec::new();
        let read = if name == "-" {
            std::io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
        } else {
            std::fs::File::open(&file).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
        };
        if let Err(source) = read {
            loaded.errors.push(ReadError::Io { file: name, source });
            continue;
        }
        match String::from_utf8(bytes) {
            Ok(text) => loaded.merge(load_str(&text, &name)),
            Err(err) => {
                let (text, bad) = decode_lossy(err.as_bytes());
                loaded.merge(load_text(&text, &name, &bad));
            }
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parsing() {
        assert_eq!(
            parse_path(r#"spec.template.spec.volumes[0].hostPath"#),
            vec![
                Segment::Key("spec".into()),
                Segment::Key("template".into()),
                Segment::Key("spec".into()),
                Segment::Key("volumes".into()),
                Segment::Index(0),
                Segment::Key("hostPath".into()),
            ]
        );
        assert_eq!(
            parse_path(r#"metadata.annotations["nginx.ingress.kubernetes.io/affinity"]"#),
            vec![
                Segment::Key("metadata".into()),
                Segment::Key("annotations".into()),
                Segment::Key("nginx.ingress.kubernetes.io/affinity".into()),
            ]
        );
    }

    #[test]
    fn documents_lines_and_fields() {
        let text = "# Source: x\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  annotations:\n    a.b/c: \"1\"\n---\n\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let loaded = load_str(text, "f.yaml");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.objects.len(), 2);
        let lines: Vec<usize> = loaded
            .objects
            .iter()
            .filter_map(|o| o.source.as_ref().map(|s| s.line))
            .collect();
        assert_eq!(lines, vec![3, 14]);
        let tree = &loaded.trees[&("f.yaml".to_string(), 3)];
        assert_eq!(tree.locate(r#"metadata.annotations["a.b/c"]"#), 8);
        assert_eq!(tree.locate("metadata.name"), 6);
        assert_eq!(tree.locate("spec.missing"), 3);
    }

    #[test]
    fn malformed_document_is_reported_and_others_read() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [unclosed\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let loaded = load_str(text, "bad.yaml");
        assert_eq!(loaded.objects.len(), 2);
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!(loaded.errors[0].line(), Some(5));
        assert!(loaded.errors[0].to_string().starts_with("bad.yaml:5: "));
    }

    #[test]
    fn lists_are_flattened_with_item_lines() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n";
        let loaded = load_str(text, "l.yaml");
        assert_eq!(loaded.objects.len(), 2);
        assert_eq!(loaded.objects[1].source.as_ref().map(|s| s.line), Some(7));
    }

    #[test]
    fn json_documents_and_scalars() {
        let loaded = load_str(
            "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"j\"}}",
            "x.json",
        );
        assert_eq!(loaded.objects.len(), 1);
        let loaded = load_str("just a string\n", "s.yaml");
        assert_eq!(loaded.objects.len(), 0);
        assert!(matches!(
            loaded.errors[0],
            ReadError::NotAnObject { line: 1, .. }
        ));
    }

    #[test]
    fn cr_only_line_ends_are_line_ends() {
        let text = "apiVersion: v1\rkind: ConfigMap\rmetadata:\r  name: a\r---\rapiVersion: v1\r\
                    kind: ConfigMap\rmetadata: {name: b}\r";
        let loaded = load_str(text, "cr.yaml");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let lines: Vec<usize> = loaded
            .objects
            .iter()
            .filter_map(|o| o.source.as_ref().map(|s| s.line))
            .collect();
        assert_eq!(lines, [1, 6]);
        let tree = &loaded.trees[&("cr.yaml".to_string(), 1)];
        assert_eq!(tree.locate("metadata.name"), 4);
        // CRLF stays one line end.
        let crlf = load_str("a: 1\r\n---\r\nb: 2\r\nc: 3\r\n", "crlf.yaml");
        assert_eq!(crlf.objects.len(), 2);
        assert_eq!(crlf.objects[1].source.as_ref().map(|s| s.line), Some(3));
    }

    #[test]
    fn parser_messages_name_no_library_function_and_no_rust_value() {
        // `--- x` with a tab after the marker: the splitter keeps one
        // document, the parser sees two.
        let err = serde_saphyr::from_str_with_options::<Spanned<Located>>(
            "a: 1\n---\nb: 2\n",
            yaml_options(),
        )
        .err()
        .map(|e| {
            e.render_with_options(serde_saphyr::render_options! {
                formatter: &Messages,
                snippets: SnippetMode::Off,
            })
        })
        .unwrap_or_default();
        assert!(err.contains("separate documents"), "{err}");
        assert!(!err.contains("from_str"), "{err}");

        let deep = format!("a: {}{}\n", "[".repeat(70), "]".repeat(70));
        // A debug build's test thread has less stack than the CLI's main thread.
        let message = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                let loaded = load_str(&deep, "deep.yaml");
                loaded
                    .errors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .ok()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        assert!(
            message.starts_with("deep.yaml:1: invalid YAML: "),
            "{message}"
        );
        assert!(message.contains("nested 65 levels deep"), "{message}");
        for debug in ["budget breached", "Depth {", "{ depth"] {
            assert!(!message.contains(debug), "{message}");
        }
    }

    #[test]
    fn invalid_utf8_reports_line_and_offset_and_reads_the_other_documents() {
        let mut bytes = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n".to_vec();
        let bad_at = bytes.len() + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b".len();
        bytes.extend_from_slice(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b\xff}\n---\n");
        bytes.extend_from_slice(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
        let (text, bad) = decode_lossy(&bytes);
        let loaded = load_text(&text, "bin.yaml", &bad);
        let names: Vec<&str> = loaded
            .objects
            .iter()
            .filter_map(|o| o.value["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(loaded.errors.len(), 1);
        assert!(
            matches!(loaded.errors[0], ReadError::NotUtf8 { line: 7, offset, .. } if offset == bad_at),
            "{:?}",
            loaded.errors
        );
        assert!(
            loaded.errors[0].to_string().starts_with(&format!(
                "bin.yaml:7: not valid UTF-8 text (byte offset {bad_at})"
            )),
            "{}",
            loaded.errors[0]
        );
        // In a comment: no document lost, still an error.
        let (text, bad) =
            decode_lossy(b"# caf\xe9\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n");
        let loaded = load_text(&text, "c.yaml", &bad);
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!(loaded.errors[0].line(), Some(1));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_walked_once() {
        let root = std::env::temp_dir().join(format!("lint-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sub = root.join("sub");
        let made = std::fs::create_dir_all(&sub)
            .and_then(|_| std::fs::write(root.join("svc.yaml"), "kind: Service\n"))
            .and_then(|_| std::os::unix::fs::symlink("..", sub.join("up")))
            .and_then(|_| std::os::unix::fs::symlink("../sub", sub.join("again")))
            .and_then(|_| std::os::unix::fs::symlink("../svc.yaml", sub.join("link.yaml")));
        assert!(made.is_ok(), "{made:?}");
        let (files, errors) = collect_files(std::slice::from_ref(&root));
        let _ = std::fs::remove_dir_all(&root);
        assert!(errors.is_empty(), "{errors:?}");
        // One file, reached once (by whichever name sorts first).
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with("svc.yaml") || files[0].ends_with("link.yaml"));
    }

    #[test]
    fn read_errors_escape_control_characters() {
        let loaded = load_str(
            "apiVersion: v1\nkind: \"Fake\\e[2JList\"\nitems: 3\n",
            "x\u{1b}]0;t\u{7}.yaml",
        );
        let message = loaded
            .errors
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(message.contains("`items` of a Fake"), "{message}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
}
