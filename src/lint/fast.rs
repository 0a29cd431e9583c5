//! The common case read quickly: a document that uses none of YAML's rarer
//! features (anchors, aliases, tags, merge keys, complex keys, deep nesting)
//! is built into JSON straight from the YAML parser's events, about twice as
//! fast as through serde. Everything else — and every document with an error —
//! is read by serde-saphyr as before, so messages, limits and YAML semantics
//! stay the ones the rest of the reader documents.
//!
//! Scalars resolve exactly as serde-saphyr resolves them for an untyped value:
//! quoted and block scalars are text; a plain scalar that is clearly text (it
//! starts with a letter and is no YAML 1.1 boolean or null word) or clearly an
//! unsigned integer is taken as such, and any other plain scalar is handed to
//! serde-saphyr alone. `tests::fast_and_serde_saphyr_read_the_same_values`
//! holds the two readers to the same values.

use std::borrow::Cow;
use std::collections::BTreeSet;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

use crate::rules::GroupHint;

use super::nodes::{Children, KeyText, LineTree, Plain};
use super::read::yaml_options;

/// Deeper documents go to serde-saphyr, which enforces the reader's depth limit.
const MAX_DEPTH: usize = 48;
/// Larger documents go to serde-saphyr, which enforces the reader's size limits.
const MAX_NODES: usize = 100_000;

/// The value of the one document in `text` and the line its content starts
/// on (1-based, in `text`), or `None` when serde-saphyr must read it.
pub(super) fn read(text: &str) -> Option<(Value, usize)> {
    walk::<ValueBuilder>(text).map(|(v, line)| (v.unwrap_or(Value::Null), line))
}

/// The line of every node of the one document in `text` (as
/// [`Located`](super::nodes::Located) gives them), or `None` as for [`read`].
pub(super) fn read_lines(text: &str) -> Option<LineTree> {
    walk::<LineBuilder>(text).map(|(tree, line)| {
        let mut tree = tree.unwrap_or_default();
        tree.line = line;
        tree
    })
}

/// What the walk builds from the events: values, or line trees.
trait Builder {
    type Node;
    type Map: Default;
    fn scalar(value: Value, line: usize) -> Self::Node;
    fn seq(items: Vec<(usize, Self::Node)>) -> Self::Node;
    fn insert(map: &mut Self::Map, key: String, key_line: usize, value: Self::Node);
    fn map(map: Self::Map) -> Self::Node;
}

struct ValueBuilder;

impl Builder for ValueBuilder {
    type Node = Value;
    type Map = Map<String, Value>;
    fn scalar(value: Value, _: usize) -> Value {
        value
    }
    fn seq(items: Vec<(usize, Value)>) -> Value {
        Value::Array(items.into_iter().map(|(_, v)| v).collect())
    }
    fn insert(map: &mut Self::Map, key: String, _: usize, value: Value) {
        // The last of duplicate keys wins, as with kubectl.
        map.insert(key, value);
    }
    fn map(map: Self::Map) -> Value {
        Value::Object(map)
    }
}

struct LineBuilder;

impl Builder for LineBuilder {
    type Node = LineTree;
    type Map = Vec<(String, LineTree)>;
    fn scalar(_: Value, _: usize) -> LineTree {
        LineTree::default()
    }
    fn seq(items: Vec<(usize, LineTree)>) -> LineTree {
        LineTree {
            line: 0,
            children: Children::Seq(
                items
                    .into_iter()
                    .map(|(line, t)| LineTree {
                        line,
                        children: t.children,
                    })
                    .collect(),
            ),
        }
    }
    fn insert(map: &mut Self::Map, key: String, key_line: usize, value: LineTree) {
        map.push((
            key,
            LineTree {
                line: key_line,
                children: value.children,
            },
        ));
    }
    fn map(map: Self::Map) -> LineTree {
        LineTree {
            line: 0,
            children: Children::Map(map),
        }
    }
}

fn walk<B: Builder>(text: &str) -> Option<(Option<B::Node>, usize)> {
    enum Frame<B: Builder> {
        /// Items with the line each starts on; the line the sequence starts on.
        Seq(Vec<(usize, B::Node)>, usize),
        /// Entries; the pending key and its line; the line the mapping starts on.
        Map(B::Map, Option<(String, usize)>, usize),
    }
    let mut stack: Vec<Frame<B>> = Vec::new();
    let mut root: Option<B::Node> = None;
    let mut first_line = None;
    let mut documents = 0;
    let mut nodes = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        let line = span.start.line();
        let (node, node_line) = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::Comment(..) => continue,
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
                continue;
            }
            Event::Alias(_) | Event::Anchor(..) | Event::UnresolvedAlias(_) => return None,
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                first_line.get_or_insert(line);
                if let Some(Frame::Map(_, pending @ None, _)) = stack.last_mut() {
                    let key = key_text(&text, style)?;
                    if key == "<<" && style == ScalarStyle::Plain {
                        return None;
                    }
                    *pending = Some((key, line));
                    nodes += 1;
                    continue;
                }
                (B::scalar(scalar(text.into_owned(), style)?, line), line)
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                if matches!(stack.last(), Some(Frame::Map(_, None, _))) {
                    return None; // a collection as a mapping key
                }
                first_line.get_or_insert(line);
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new(), line)
                } else {
                    Frame::Map(B::Map::default(), None, line)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Frame::Seq(items, start) => (B::seq(items), start),
                Frame::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Frame::Map(map, None, start) => (B::map(map), start),
                _ => return None,
            },
            // Events of later parser versions: let serde-saphyr decide.
            _ => return None,
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return None;
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, _)) => items.push((node_line, node)),
            Some(Frame::Map(map, pending, _)) => {
                let (key, key_line) = pending.take()?;
                B::insert(map, key, key_line, node);
            }
        }
    }
    if !stack.is_empty() {
        return None;
    }
    Some((root, first_line.unwrap_or(1)))
}

/// One object read straight to compact JSON: what the reader stores.
pub(super) struct JsonObject {
    pub(super) json: Vec<u8>,
    /// The line its content starts on (1-based, in the document's text).
    pub(super) line: usize,
    pub(super) hint: GroupHint,
}

/// Where a top-level field of interest is being read.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Other,
    Kind,
    ApiVersion,
    Metadata,
    Namespace,
}

/// What the group hint needs, gathered while the JSON is written.
#[derive(Default)]
struct Head {
    kind: String,
    api_version: String,
    namespace: String,
    words: BTreeSet<String>,
    /// The kind is known and keeps no words: text is no longer split.
    skipping_words: bool,
}

impl Head {
    /// `field` got the text value `text`, or another value (`None`). The last
    /// of duplicate keys wins, as in the value reader: a non-text kind is no
    /// kind, a later `metadata` drops the namespace. `None` returned: a kind
    /// changed after its words were skipped; let the value reader decide.
    fn set(&mut self, field: Field, text: Option<&str>) -> Option<()> {
        let slot = match field {
            Field::Other => return Some(()),
            Field::Kind | Field::ApiVersion if self.skipping_words => return None,
            Field::Kind => &mut self.kind,
            Field::ApiVersion => &mut self.api_version,
            Field::Namespace => &mut self.namespace,
            Field::Metadata => {
                self.namespace.clear();
                return Some(());
            }
        };
        match text {
            Some(t) => t.clone_into(slot),
            None => slot.clear(),
        }
        if matches!(field, Field::Kind | Field::ApiVersion)
            && !self.kind.is_empty()
            && !self.api_version.is_empty()
            && !GroupHint::uses_words(&self.kind, &self.api_version)
        {
            // Most objects name their kind first: the rest of their text
            // need not be split into words.
            self.skipping_words = true;
            self.words.clear();
        }
        Some(())
    }

    fn note_words(&mut self, text: &str) {
        if !self.skipping_words {
            let mut found = BTreeSet::new();
            GroupHint::words_of(text, &mut found);
            self.words.extend(found.into_iter().map(str::to_string));
        }
    }
}

/// The one document in `text` written as JSON without building its value,
/// when it is a mapping (not a `kind: List`) the fast reader takes; `None`
/// means: read it as a value (see [`read`]).
pub(super) fn read_json(text: &str) -> Option<JsonObject> {
    struct Frame {
        is_map: bool,
        written: usize,
        /// For a mapping: the field its pending key names (at depth 1 and 2).
        pending: Option<Field>,
        /// The field this collection is the value of.
        field: Field,
    }
    let mut json = Vec::with_capacity(text.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut first_line = None;
    let mut documents = 0;
    let mut nodes = 0;
    let mut done = false;
    let mut head = Head::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        nodes += 1;
        if nodes > MAX_NODES || done && !matches!(event, Event::StreamEnd | Event::DocumentEnd) {
            return None;
        }
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Comment(..) => {}
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() || stack.is_empty() {
                    return None; // a scalar document is an error for the value reader
                }
                let depth = stack.len();
                let top = stack.last_mut()?;
                if top.is_map && top.pending.is_none() {
                    let key: Cow<'_, str> = if style != ScalarStyle::Plain || clearly_text(&value) {
                        Cow::Borrowed(&value)
                    } else {
                        Cow::Owned(key_text(&value, style)?)
                    };
                    if key == "<<" && style == ScalarStyle::Plain {
                        return None;
                    }
                    if top.written > 0 {
                        json.push(b',');
                    }
                    top.written += 1;
                    top.pending = Some(match (depth, top.field, &*key) {
                        (1, _, "kind") => Field::Kind,
                        (1, _, "apiVersion") => Field::ApiVersion,
                        (1, _, "metadata") => Field::Metadata,
                        (2, Field::Metadata, "namespace") => Field::Namespace,
                        _ => Field::Other,
                    });
                    serde_json::to_writer(&mut json, &*key).ok()?;
                    json.push(b':');
                    continue;
                }
                let field = if top.is_map {
                    top.pending.take()?
                } else {
                    Field::Other
                };
                if !top.is_map {
                    if top.written > 0 {
                        json.push(b',');
                    }
                    top.written += 1;
                }
                // Text needs no value: written and noted from the parser's own string.
                let resolved = if style != ScalarStyle::Plain || clearly_text(&value) {
                    None
                } else {
                    Some(scalar(value.to_string(), style)?)
                };
                let text = match &resolved {
                    None => Some(&*value),
                    Some(Value::String(t)) => Some(t.as_str()),
                    Some(_) => None,
                };
                head.set(field, text)?;
                if let Some(text) = text {
                    head.note_words(text);
                }
                match &resolved {
                    None => serde_json::to_writer(&mut json, &*value).ok()?,
                    Some(v) => serde_json::to_writer(&mut json, v).ok()?,
                }
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                let is_map = matches!(event, Event::MappingStart(..));
                let field = match stack.last_mut() {
                    None if !is_map => return None, // a list document: read it as a value
                    None => {
                        first_line.get_or_insert(span.start.line());
                        Field::Other
                    }
                    Some(top) if top.is_map && top.pending.is_none() => return None,
                    Some(top) if top.is_map => top.pending.take()?,
                    Some(top) => {
                        if top.written > 0 {
                            json.push(b',');
                        }
                        top.written += 1;
                        Field::Other
                    }
                };
                head.set(field, None)?;
                json.push(if is_map { b'{' } else { b'[' });
                stack.push(Frame {
                    is_map,
                    written: 0,
                    pending: None,
                    field,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = stack.pop()?;
                if frame.is_map != matches!(event, Event::MappingEnd) || frame.pending.is_some() {
                    return None;
                }
                json.push(if frame.is_map { b'}' } else { b']' });
                done = stack.is_empty();
            }
            Event::Alias(_) | Event::Anchor(..) | Event::UnresolvedAlias(_) => return None,
            // Events of later parser versions: let serde-saphyr decide.
            _ => return None,
        }
    }
    if !done || head.kind.ends_with("List") {
        return None;
    }
    let words = head.words.iter().map(String::as_str).collect();
    let hint = GroupHint::from_parts(&head.kind, &head.api_version, &head.namespace, words);
    Some(JsonObject {
        json,
        line: first_line.unwrap_or(1),
        hint,
    })
}

/// A YAML 1.1 boolean or a null word: serde-saphyr does not read these as text.
fn is_keyword(s: &str) -> bool {
    ["y", "yes", "n", "no", "true", "false", "on", "off", "null"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
}

/// Plain text that no YAML schema reads as anything else.
fn clearly_text(s: &str) -> bool {
    let lower_start = s.get(..3).map(str::to_ascii_lowercase);
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !is_keyword(s)
        // Rust's float syntax (`inf`, `infinity`, `nan`) is a float to some readers.
        && !matches!(lower_start.as_deref(), Some("inf" | "nan"))
}

/// A decimal without sign, leading zero, `_` or exponent that fits in a u64.
fn clearly_unsigned(s: &str) -> Option<u64> {
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    if !digits || s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn scalar(text: String, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::String(text));
    }
    if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
        return Some(Value::Null);
    }
    if clearly_text(&text) {
        return Some(Value::String(text));
    }
    if let Some(n) = clearly_unsigned(&text) {
        return Some(Value::Number(n.into()));
    }
    serde_saphyr::from_str_with_options::<Plain>(&text, yaml_options())
        .ok()
        .map(|p| p.0)
}

fn key_text(text: &str, style: ScalarStyle) -> Option<String> {
    if style != ScalarStyle::Plain || clearly_text(text) {
        return Some(text.to_string());
    }
    serde_saphyr::from_str_with_options::<KeyText>(text, yaml_options())
        .ok()
        .map(|k| k.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_saphyr::Spanned;

    fn slow(text: &str) -> Option<(Value, usize)> {
        serde_saphyr::from_str_with_options::<Spanned<Plain>>(text, yaml_options())
            .ok()
            .map(|s| (s.value.0, s.referenced.line() as usize))
    }

    fn slow_lines(text: &str) -> Option<LineTree> {
        serde_saphyr::from_str_with_options::<Spanned<super::super::nodes::Located>>(
            text,
            yaml_options(),
        )
        .ok()
        .map(|s| {
            let mut tree = s.value.tree;
            tree.line = s.referenced.line() as usize;
            tree
        })
    }

    /// The JSON writer gives the value and hint the value reader gives, or
    /// declines (Lists, non-mappings).
    fn same_json(text: &str, at: &str) {
        let Some(obj) = read_json(text) else { return };
        let (value, line) = read(text).expect("the value reader takes what the JSON writer takes");
        let decoded: Value = serde_json::from_slice(&obj.json).expect("valid JSON");
        assert_eq!(decoded, value, "{at}");
        assert_eq!(obj.line, line, "{at}");
        assert_eq!(obj.hint, GroupHint::of(&value), "{at}");
    }

    /// Every document the fast reader accepts reads the same with serde-saphyr.
    #[test]
    fn fast_and_serde_saphyr_read_the_same_values() {
        let scalars = [
            "web",
            "Yes",
            "yes",
            "Y",
            "n",
            "NO",
            "on",
            "Off",
            "true",
            "False",
            "null",
            "Null",
            "~",
            "",
            "0",
            "7",
            "007",
            "8080",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
            "+1",
            "1.5",
            "1e3",
            "1_000",
            "0x1F",
            "0X1F",
            "0o17",
            "0b101",
            ".inf",
            "-.inf",
            ".nan",
            "inf",
            "Infinity",
            "nan",
            "NaN",
            "infra",
            "nano",
            "1.0.0",
            "v1",
            "12:30",
            "2026-12-01",
            "1Gi",
            "500m",
            "-x",
            "?x",
            ":x",
            "a b",
            "ñandú",
            "ß",
            "3.",
            "'quoted'",
            "\"7\"",
            "\"yes\"",
            "'~'",
        ];
        for s in scalars {
            for doc in [
                format!("k: {s}\n"),
                format!("{s}: v\n"),
                format!("- {s}\n- [{s}]\n"),
                format!("m: {{a: {s}, b: [1, {s}]}}\n"),
            ] {
                if let Some(fast) = read(&doc) {
                    assert_eq!(Some(fast), slow(&doc), "document {doc:?}");
                    same_json(&doc, &doc);
                }
            }
        }
        let documents = [
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels: {app: a}\nspec:\n  ports:\n  - port: 80\n    targetPort: http\n",
            "# leading comment\n\nkind: ConfigMap\ndata:\n  a: |\n    line one\n    line two\n  b: >-\n    folded\n    text\n",
            "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"kind\": \"Service\"}, null, 3.5]}",
            "a: 1\na: 2\n",
            "plain: multi\n  line scalar\n",
            "empty:\nlist: []\nmap: {}\n",
        ];
        for doc in documents {
            let fast = read(doc);
            assert!(fast.is_some(), "fast reader should take {doc:?}");
            assert_eq!(fast, slow(doc), "document {doc:?}");
            assert_eq!(read_lines(doc), slow_lines(doc), "lines of {doc:?}");
            same_json(doc, doc);
        }
    }

    /// The same over every document of the chart corpus and the lint fixtures.
    #[test]
    fn the_corpus_reads_the_same_through_both_readers() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (files, _) = crate::lint::collect_files(&[
            root.join("tests/corpus/charts"),
            root.join("tests/fixtures/lint"),
            root.join("examples"),
        ]);
        let (mut fast_docs, mut all_docs) = (0, 0);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for doc in super::super::read::split_documents(&text) {
                all_docs += 1;
                if let Some(fast) = read(&doc.text) {
                    fast_docs += 1;
                    let at = format!("{}:{}", file.display(), doc.first_line);
                    assert_eq!(Some(fast), slow(&doc.text), "{at}");
                    assert_eq!(read_lines(&doc.text), slow_lines(&doc.text), "{at}");
                    same_json(&doc.text, &at);
                }
            }
        }
        assert!(all_docs > 400, "{all_docs} documents");
        assert!(
            fast_docs * 10 > all_docs * 9,
            "fast reader took {fast_docs} of {all_docs}"
        );
    }

    #[test]
    fn rarer_features_go_to_serde_saphyr() {
        for doc in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "base: {x: 1}\nm:\n  <<: {y: 2}\n",
            "? [a, b]\n: c\n",
            "a: 1\n---\nb: 2\n",
            "a: [unclosed\n",
        ] {
            assert_eq!(read(doc), None, "{doc:?}");
        }
        let deep = format!("{}1{}", "[".repeat(60), "]".repeat(60));
        assert_eq!(read(&deep), None);
    }
}
