//! Reading manifests: files, directories and stdin; multi-document YAML
//! streams, JSON, `kind: List`; document and field line numbers.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{
    DefaultMessageFormatter, DuplicateKeyPolicy, MessageFormatter, Options, SnippetMode, Spanned,
};

use super::loaded::{DocBody, DocText, FileText, Loaded, Stored, TextSource, text_hash, workers};
use super::nodes::{LineTree, Located, Plain};
use super::render::escape_text;
use crate::rules::GroupHint;

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
pub(super) struct Doc<'a> {
    pub(super) text: std::borrow::Cow<'a, str>,
    pub(super) first_line: usize,
}

fn is_marker(line: &str, marker: &str) -> Option<usize> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t', '\r'])).then_some(marker.len())
}

/// Split a YAML stream at `---` / `...` lines (column 0, as YAML requires).
pub(super) fn split_documents(text: &str) -> Vec<Doc<'_>> {
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

pub(super) fn yaml_options() -> Options {
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
    load_bytes(text.as_bytes().to_vec(), file)
}

/// Read one stream of any bytes, as a file's are read: a byte-order mark,
/// lone CRs and invalid UTF-8 are dealt with (and reported) first.
pub fn load_bytes(bytes: Vec<u8>, file: &str) -> Loaded {
    let mut loaded = Loaded::default();
    let (text, bad, _) = prepare_text(bytes);
    loaded.read_text(file, text, &bad, None);
    loaded
}

/// An invalid UTF-8 sequence: 1-based line and 0-based byte offset in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct BadBytes {
    line: usize,
    offset: usize,
}

/// Bytes as the reader sees them: UTF-8 (each invalid sequence replaced by
/// U+FFFD and noted), no byte-order mark, and a lone CR (old Mac files, some
/// editors) turned into the line end YAML reads it as.
/// The third value is true when the text is the bytes as they were, so that
/// byte offsets in it are offsets in the file.
pub(super) fn prepare_text(bytes: Vec<u8>) -> (String, Vec<BadBytes>, bool) {
    let (text, bad) = match String::from_utf8(bytes) {
        Ok(text) => (text, Vec::new()),
        Err(err) => decode_lossy(err.as_bytes()),
    };
    let mut as_is = bad.is_empty();
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            as_is = false;
            rest.to_string()
        }
        None => text,
    };
    let text = match normalize_line_ends(&text) {
        Cow::Owned(normalized) => {
            as_is = false;
            normalized
        }
        Cow::Borrowed(_) => text,
    };
    (text, bad, as_is)
}

/// The bytes of a file (not stdin).
pub(super) fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The line of every node of the one document in `text` (lines counted in
/// `text`): from the parser's events when the fast reader takes the
/// document, else through serde-saphyr.
pub(super) fn line_tree(text: &str) -> Option<LineTree> {
    super::fast::read_lines(text).or_else(|| {
        let spanned =
            serde_saphyr::from_str_with_options::<Spanned<Located>>(text, yaml_options()).ok()?;
        let mut tree = spanned.value.tree;
        tree.line = spanned.referenced.line() as usize;
        Some(tree)
    })
}

/// One object of a document, ready to store.
struct Part {
    json: Box<[u8]>,
    item: Box<[usize]>,
    line: usize,
    hint: GroupHint,
}

/// What one document gave: its objects and its errors.
#[derive(Default)]
struct DocRead {
    parts: Vec<Part>,
    errors: Vec<ReadError>,
    parsed: bool,
}

fn read_document(text: &str, first_line: usize, file: &str) -> DocRead {
    let offset = first_line - 1;
    let mut out = DocRead::default();
    if let Some(object) = super::fast::read_json(text) {
        out.parsed = true;
        out.parts.push(Part {
            json: object.json.into_boxed_slice(),
            item: Box::default(),
            line: object.line + offset,
            hint: object.hint,
        });
        return out;
    }
    let read = super::fast::read(text).map(Ok).unwrap_or_else(|| {
        serde_saphyr::from_str_with_options::<Spanned<Plain>>(text, yaml_options())
            .map(|spanned| (spanned.value.0, spanned.referenced.line() as usize))
    });
    match read {
        Ok((value, first)) => {
            let line = first + offset;
            let is_list = value
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && value.get("items").is_some_and(Value::is_array);
            // Lists are rare: read them again with lines to know where each item starts.
            let list_tree = is_list
                .then(|| line_tree(text))
                .flatten()
                .map(|tree| tree.shifted(offset));
            out.parsed = true;
            flatten(
                value,
                line,
                list_tree.as_ref(),
                &mut Vec::new(),
                file,
                &mut out,
            );
        }
        Err(err) => {
            let line = err
                .location()
                .map(|l| l.line() as usize + offset)
                .filter(|&l| l > offset)
                .unwrap_or(first_line);
            let message = err.render_with_options(serde_saphyr::render_options! {
                formatter: &Messages,
                snippets: SnippetMode::Off,
                line_offset: offset as u64,
            });
            out.errors.push(ReadError::Yaml {
                file: file.to_string(),
                line,
                message: message.replace('\n', " "),
            });
        }
    }
    out
}

/// One document's value as objects: the items of a `kind: List` (nested
/// Lists too) become objects of their own, lines taken from `tree`.
fn flatten(
    value: Value,
    line: usize,
    tree: Option<&LineTree>,
    item: &mut Vec<usize>,
    file: &str,
    out: &mut DocRead,
) {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let is_list = kind.ends_with("List") && value.get("items").is_some();
    if !is_list {
        match &value {
            Value::Object(_) => {}
            Value::Null => return,
            other => {
                out.errors.push(ReadError::NotAnObject {
                    file: file.to_string(),
                    line,
                    found: json_type(other),
                });
                return;
            }
        }
        let hint = GroupHint::of(&value);
        // Serializing a Value to memory cannot fail (all keys are strings).
        let json = serde_json::to_vec(&value).unwrap_or_default();
        out.parts.push(Part {
            json: json.into_boxed_slice(),
            item: item.as_slice().into(),
            line,
            hint,
        });
        return;
    }
    let kind = kind.to_string();
    let Value::Object(mut map) = value else {
        return;
    };
    match map.remove("items") {
        Some(Value::Array(items)) => {
            let items_tree = tree.and_then(|t| t.key("items"));
            for (i, value) in items.into_iter().enumerate() {
                let item_tree = items_tree.and_then(|t| t.item(i));
                let item_line = item_tree.map_or(line, |t| t.line);
                item.push(i);
                flatten(value, item_line, item_tree, item, file, out);
                item.pop();
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => out.errors.push(ReadError::BadList {
            file: file.to_string(),
            line,
            kind,
        }),
    }
}

impl Loaded {
    /// Read one prepared stream whose `bad` lines held invalid UTF-8: the
    /// documents covering them are reported and skipped, the others read.
    /// `path` is where to read it again for lines (`None`: keep the text).
    pub(super) fn read_text(
        &mut self,
        file: &str,
        text: String,
        bad: &[BadBytes],
        path: Option<PathBuf>,
    ) {
        let file_index = self.files.len();
        let mut reported = vec![false; bad.len()];
        self.read_segment(file_index, file, &text, 1, 0, bad, &mut reported);
        // Invalid bytes outside every document (in a comment): still an error.
        if let Some((b, _)) = bad.iter().zip(&reported).find(|(_, r)| !**r) {
            self.errors.push(ReadError::NotUtf8 {
                file: file.to_string(),
                line: b.line,
                offset: b.offset,
            });
        }
        let text = match path {
            Some(path) => TextSource::OnDisk(path),
            None => TextSource::Kept(text),
        };
        self.files.push(FileText {
            name: file.to_string(),
            text,
        });
    }

    /// Read a file a segment at a time (segments end before a `---` or `...`
    /// line), so that its whole text is never in memory: only its objects,
    /// as compact JSON. `Ok(false)` (and nothing read) when the file needs its
    /// text prepared first: a byte-order mark, a lone CR or invalid UTF-8.
    pub(super) fn read_file_in_segments(&mut self, file: &str, path: &Path) -> io::Result<bool> {
        const SEGMENT: usize = 1 << 20;
        let mut input = std::fs::File::open(path)?;
        let file_index = self.files.len();
        let before = (self.objects.len(), self.docs.len(), self.errors.len());
        let give_up = |loaded: &mut Loaded| -> io::Result<bool> {
            loaded.objects.truncate(before.0);
            loaded.docs.truncate(before.1);
            loaded.errors.truncate(before.2);
            Ok(false)
        };
        let mut buf: Vec<u8> = Vec::new();
        let (mut base_line, mut base_offset) = (1, 0);
        let mut eof = false;
        while !eof {
            let filled = buf.len();
            buf.resize(filled + SEGMENT, 0);
            let n = loop {
                match input.read(&mut buf[filled..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        give_up(self)?;
                        return Err(e);
                    }
                }
            };
            buf.truncate(filled + n);
            eof = n == 0;
            if base_offset == 0 && buf.starts_with("\u{feff}".as_bytes()) {
                return give_up(self);
            }
            let cut = if eof {
                buf.len()
            } else {
                match last_marker_line(&buf) {
                    Some(at) => at,
                    None => continue, // one document so far: read on
                }
            };
            let segment = &buf[..cut];
            let lone_cr = segment
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'\r' && segment.get(i + 1) != Some(&b'\n'));
            let Ok(text) = std::str::from_utf8(segment).map_err(drop) else {
                return give_up(self);
            };
            if lone_cr {
                return give_up(self);
            }
            self.read_segment(file_index, file, text, base_line, base_offset, &[], &mut []);
            base_line += segment.iter().filter(|&&b| b == b'\n').count();
            base_offset += cut;
            buf.drain(..cut);
        }
        self.files.push(FileText {
            name: file.to_string(),
            text: TextSource::OnDisk(path.to_path_buf()),
        });
        Ok(true)
    }

    /// Read the documents of `text`, which starts at line `base_line` and
    /// byte `base_offset` of file number `file_index`.
    #[allow(clippy::too_many_arguments)]
    fn read_segment(
        &mut self,
        file_index: usize,
        file: &str,
        text: &str,
        base_line: usize,
        base_offset: usize,
        bad: &[BadBytes],
        reported: &mut [bool],
    ) {
        let base = text.as_ptr() as usize;
        let mut docs: Vec<(DocBody, usize, u64)> = Vec::new();
        for doc in split_documents(text) {
            let first_line = doc.first_line + base_line - 1;
            let last_line = first_line + doc.text.lines().count().saturating_sub(1);
            let mut skip = false;
            for (i, b) in bad.iter().enumerate() {
                if (first_line..=last_line).contains(&b.line) {
                    if !skip {
                        self.errors.push(ReadError::NotUtf8 {
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
            let (body, hash) = match doc.text {
                Cow::Borrowed(t) => {
                    let from = t.as_ptr() as usize - base + base_offset;
                    (
                        DocBody::Range(from..from + t.len()),
                        text_hash(t.as_bytes()),
                    )
                }
                Cow::Owned(t) => (DocBody::Owned(t.into_boxed_str()), 0),
            };
            docs.push((body, first_line, hash));
        }
        let results = read_documents(text, base_offset, &docs, file);
        for ((body, first_line, hash), read) in docs.into_iter().zip(results) {
            self.errors.extend(read.errors);
            if !read.parsed {
                continue;
            }
            let doc = self.docs.len();
            self.docs.push(DocText {
                file: file_index,
                first_line,
                body,
                hash,
            });
            self.objects.extend(read.parts.into_iter().map(|p| Stored {
                json: p.json,
                doc,
                item: p.item,
                line: p.line,
                hint: p.hint,
            }));
        }
    }
}

/// Where the last complete `---` or `...` line of `buf` starts (not at 0):
/// everything before it is whole documents.
fn last_marker_line(buf: &[u8]) -> Option<usize> {
    let mut end = buf.len();
    while let Some(nl) = buf[..end].iter().rposition(|&b| b == b'\n') {
        let line = &buf[nl + 1..];
        let is_marker = (line.starts_with(b"---") || line.starts_with(b"..."))
            && matches!(line.get(3), Some(b' ' | b'\t' | b'\r' | b'\n'));
        if is_marker {
            return Some(nl + 1);
        }
        end = nl;
    }
    None
}

/// Parse documents on all cores; results in document order.
fn read_documents(
    text: &str,
    base_offset: usize,
    docs: &[(DocBody, usize, u64)],
    file: &str,
) -> Vec<DocRead> {
    let read_one = |(body, first_line, _): &(DocBody, usize, u64)| {
        let doc_text = match body {
            DocBody::Range(r) => &text[r.start - base_offset..r.end - base_offset],
            DocBody::Owned(t) => t,
        };
        read_document(doc_text, *first_line, file)
    };
    let threads = workers(docs.len());
    if threads == 1 {
        return docs.iter().map(read_one).collect();
    }
    let chunk = docs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = docs
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(read_one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
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
        let (bytes, path) = if name == "-" {
            let mut bytes = Vec::new();
            (
                std::io::stdin()
                    .lock()
                    .read_to_end(&mut bytes)
                    .map(|_| bytes),
                None,
            )
        } else {
            match loaded.read_file_in_segments(&name, &file) {
                Ok(true) => continue,
                Ok(false) => (read_bytes(&file), Some(file.clone())),
                Err(source) => {
                    loaded.errors.push(ReadError::Io { file: name, source });
                    continue;
                }
            }
        };
        match bytes {
            Ok(bytes) => {
                let (text, bad, as_is) = prepare_text(bytes);
                // Read again for lines only where offsets are the file's own.
                loaded.read_text(&name, text, &bad, path.filter(|_| as_is));
            }
            Err(source) => loaded.errors.push(ReadError::Io { file: name, source }),
        }
    }
    // Evaluation allocates next: give back what the lists grew by in advance.
    loaded.objects.shrink_to_fit();
    loaded.docs.shrink_to_fit();
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, file: &str, bad: &[BadBytes]) -> Loaded {
        let mut loaded = Loaded::default();
        loaded.read_text(file, text.to_string(), bad, None);
        loaded
    }

    #[test]
    fn documents_lines_and_fields() {
        let text = "# Source: x\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  annotations:\n    a.b/c: \"1\"\n---\n\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let loaded = load_str(text, "f.yaml");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.len(), 2);
        let lines: Vec<usize> = loaded
            .objects()
            .iter()
            .filter_map(|o| o.source.as_ref().map(|s| s.line))
            .collect();
        assert_eq!(lines, vec![3, 14]);
        let doc = loaded.doc_text(0, None).expect("kept text");
        let tree = loaded
            .doc_tree(0, &doc)
            .expect("the Service document parses");
        assert_eq!(tree.locate(r#"metadata.annotations["a.b/c"]"#), 8);
        assert_eq!(tree.locate("metadata.name"), 6);
        assert_eq!(tree.locate("spec.missing"), 3);
    }

    /// A stream of more than two segments, with a document longer than a
    /// segment and one on a `--- ` line, written to `name` in a temp dir.
    fn segmented_stream(name: &str, tail: &str) -> (PathBuf, String) {
        use std::fmt::Write as _;
        let mut text = String::new();
        for i in 0..9000 {
            let _ = write!(
                text,
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: ns{}}}\n\
                 spec: {{selector: {{app: a{i}}}, sessionAffinity: ClientIP}}\n",
                i % 7
            );
        }
        text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n");
        for i in 0..60_000 {
            let _ = writeln!(text, "  k{i}: v{i}");
        }
        text.push_str(
            "--- {apiVersion: v1, kind: Service, metadata: {name: last}, \
             spec: {selector: {app: x}, sessionAffinity: ClientIP}}\n",
        );
        text.push_str(tail);
        let dir = std::env::temp_dir().join(format!("so-segments-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, &text).expect("write");
        (path, text)
    }

    fn same_as_whole_text(path: &Path, text: &str) -> Loaded {
        let name = path.display().to_string();
        let from_file = load_paths(&[path.to_path_buf()]);
        let from_text = load_str(text, &name);
        assert!(from_file.errors.is_empty(), "{:?}", from_file.errors);
        assert_eq!(from_file.len(), 9002);
        let view = |l: &Loaded| -> Vec<(Value, Option<usize>)> {
            l.objects()
                .into_iter()
                .map(|o| (o.value, o.source.map(|s| s.line)))
                .collect()
        };
        assert_eq!(view(&from_file), view(&from_text));
        let config = crate::rules::Config::default();
        let findings = crate::lint::lint(&from_file, &config);
        assert_eq!(findings, crate::lint::lint(&from_text, &config));
        assert_eq!(findings.len(), 9001, "every ClientIP Service");
        from_file
    }

    #[test]
    fn files_are_read_in_segments_with_the_same_objects_lines_and_findings() {
        let (path, text) = segmented_stream("plain.yaml", "");
        assert!(text.len() > 2 << 20, "more than two segments");
        let loaded = same_as_whole_text(&path, &text);
        assert!(matches!(loaded.files[0].text, TextSource::OnDisk(_)));
        std::fs::remove_dir_all(path.parent().expect("dir")).ok();
    }

    #[test]
    fn a_lone_cr_in_a_later_segment_reads_the_prepared_text_instead() {
        let (path, text) = segmented_stream("cr.yaml", "# a comment\r# after a lone CR\n");
        let loaded = same_as_whole_text(&path, &text);
        assert!(matches!(loaded.files[0].text, TextSource::Kept(_)));
        std::fs::remove_dir_all(path.parent().expect("dir")).ok();
    }

    #[test]
    fn malformed_document_is_reported_and_others_read() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [unclosed\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let loaded = load_str(text, "bad.yaml");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!(loaded.errors[0].line(), Some(5));
        assert!(loaded.errors[0].to_string().starts_with("bad.yaml:5: "));
    }

    #[test]
    fn lists_are_flattened_with_item_lines() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n";
        let loaded = load_str(text, "l.yaml");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded.objects()[1].source.as_ref().map(|s| s.line), Some(7));
    }

    #[test]
    fn json_documents_and_scalars() {
        let loaded = load_str(
            "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"j\"}}",
            "x.json",
        );
        assert_eq!(loaded.len(), 1);
        let loaded = load_str("just a string\n", "s.yaml");
        assert_eq!(loaded.len(), 0);
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
            .objects()
            .iter()
            .filter_map(|o| o.source.as_ref().map(|s| s.line))
            .collect();
        assert_eq!(lines, [1, 6]);
        let doc = loaded.doc_text(0, None).expect("kept text");
        let tree = loaded.doc_tree(0, &doc).expect("the first document parses");
        assert_eq!(tree.locate("metadata.name"), 4);
        // CRLF stays one line end.
        let crlf = load_str("a: 1\r\n---\r\nb: 2\r\nc: 3\r\n", "crlf.yaml");
        assert_eq!(crlf.len(), 2);
        assert_eq!(crlf.objects()[1].source.as_ref().map(|s| s.line), Some(3));
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
        let objects = loaded.objects();
        let names: Vec<&str> = objects
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
