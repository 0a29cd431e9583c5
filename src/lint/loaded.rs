//! What `lint` read, kept small, and its evaluation.
//!
//! A parsed manifest takes about 25 times its text as `serde_json::Value`s, so
//! objects are kept as compact JSON and parsed again one independent group at a
//! time (see [`partition`]); groups are evaluated on all cores. The lines of
//! fields are found afterwards, only for the documents that have findings, from
//! the file read again (or from the text kept for stdin and strings), so peak
//! memory stays a small multiple of the input.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_json::Value;

use super::nodes::LineTree;
use super::read::{ReadError, line_tree};
use crate::rules::{Config, Finding, GroupHint, Object, evaluate, partition, sort_findings};

/// Objects read from one or more sources, with read errors.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Files or documents that could not be read; the others were still read.
    pub errors: Vec<ReadError>,
    pub(super) files: Vec<FileText>,
    pub(super) docs: Vec<DocText>,
    pub(super) objects: Vec<Stored>,
}

/// One source of text: its name, and how to get its text back.
#[derive(Debug)]
pub(super) struct FileText {
    pub(super) name: String,
    pub(super) text: TextSource,
}

#[derive(Debug)]
pub(super) enum TextSource {
    /// Kept: stdin and strings cannot be read again, and files whose text the
    /// reader changed (a byte-order mark, CR line ends, invalid UTF-8) have
    /// offsets that are not the file's.
    Kept(String),
    /// Read again, one document at a time, when a finding needs a line;
    /// each document's hash tells whether the file changed in between.
    OnDisk(PathBuf),
}

pub(super) fn text_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// Where a document's text is: a range of its file's prepared text, or text
/// of its own when the `---` line carried content.
#[derive(Debug)]
pub(super) struct DocText {
    pub(super) file: usize,
    pub(super) first_line: usize,
    pub(super) body: DocBody,
    /// Hash of the text of a `Range` body, to check it when read again.
    pub(super) hash: u64,
}

#[derive(Debug)]
pub(super) enum DocBody {
    Range(std::ops::Range<usize>),
    Owned(Box<str>),
}

/// One object (a document, or an item of a `kind: List`).
#[derive(Debug)]
pub(super) struct Stored {
    pub(super) json: Box<[u8]>,
    pub(super) doc: usize,
    /// Indexes in `items` from the document down to the object, for the
    /// items of a `kind: List` (Lists may nest); empty for a plain document.
    pub(super) item: Box<[usize]>,
    pub(super) line: usize,
    pub(super) hint: GroupHint,
}

/// A finding and the stored object it is on (when that is known).
type Owned = (Finding, Option<usize>);

/// How many threads to use for `work` items: all cores, but none for small inputs.
pub(super) fn workers(work: usize) -> usize {
    const PER_THREAD_AT_LEAST: usize = 64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(8).min(work / PER_THREAD_AT_LEAST).max(1)
}

impl Loaded {
    /// Number of objects read.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when no object was read.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object read (List items flattened), in input order, parsed.
    /// Holds the whole input as values: for large inputs use [`Loaded::evaluate`].
    pub fn objects(&self) -> Vec<Object> {
        (0..self.objects.len())
            .filter_map(|i| self.object(i))
            .collect()
    }

    fn object(&self, i: usize) -> Option<Object> {
        let stored = &self.objects[i];
        // Written by serde_json from a Value when it was read: this cannot fail.
        let value: Value = serde_json::from_slice(&stored.json).ok()?;
        let file = &self.files[self.docs[stored.doc].file].name;
        Some(Object::with_source(value, file.clone(), stored.line))
    }

    fn file_of(&self, i: usize) -> usize {
        self.docs[self.objects[i].doc].file
    }

    /// Evaluate the rules over everything loaded, one independent group of
    /// objects at a time, and point each finding at the line of its field.
    pub fn evaluate(&self, config: &Config) -> Vec<Finding> {
        let groups = partition(self.objects.iter().map(|o| &o.hint));
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                let Some(group) = groups.get(g) else { break };
                done.push((g, self.evaluate_group(group, config)));
            }
            done
        };
        let mut per_group: Vec<(usize, Vec<Owned>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers(self.objects.len()))
                .map(|_| s.spawn(work))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        // Group order, so that the output does not depend on thread timing.
        per_group.sort_by_key(|(g, _)| *g);
        let mut found: Vec<Owned> = per_group.into_iter().flat_map(|(_, f)| f).collect();
        self.locate(&mut found);
        let mut findings: Vec<Finding> = found.into_iter().map(|(f, _)| f).collect();
        sort_findings(&mut findings);
        findings
    }

    /// Findings of one group, each with the stored object it is on.
    fn evaluate_group(&self, group: &[usize], config: &Config) -> Vec<Owned> {
        let objects: Vec<Object> = group.iter().filter_map(|&i| self.object(i)).collect();
        let findings = evaluate(&objects, config);
        drop(objects);
        let mut by_line: HashMap<usize, Vec<usize>> = HashMap::new();
        for &i in group {
            by_line.entry(self.objects[i].line).or_default().push(i);
        }
        findings
            .into_iter()
            .map(|f| {
                let owner = f
                    .line
                    .and_then(|line| by_line.get(&line))
                    .and_then(|c| c.iter().find(|&&i| self.is_object_of(i, &f)).or(c.first()))
                    .copied();
                (f, owner)
            })
            .collect()
    }

    /// Whether finding `f` is on stored object `i` (several objects can start
    /// on one line, e.g. the items of a one-line JSON List).
    fn is_object_of(&self, i: usize, f: &Finding) -> bool {
        #[derive(Deserialize)]
        struct Meta<'a> {
            #[serde(borrow, default)]
            name: Option<Cow<'a, str>>,
        }
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow, default)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            metadata: Option<Meta<'a>>,
        }
        let file = &self.files[self.file_of(i)].name;
        f.file.as_deref() == Some(file.as_str())
            && serde_json::from_slice::<Head<'_>>(&self.objects[i].json).is_ok_and(|h| {
                h.kind.as_deref() == Some(f.kind.as_str())
                    && h.metadata.and_then(|m| m.name).as_deref() == Some(f.name.as_str())
            })
    }

    /// Move each finding's `line` from its object's first line to the line of
    /// its `path` (or the deepest existing parent). Each document with
    /// findings is read again (from its file, unless its text was kept) and
    /// parsed with lines once; its tree is dropped before the next one.
    fn locate(&self, found: &mut [Owned]) {
        let mut by_doc: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (k, (_, owner)) in found.iter().enumerate() {
            if let Some(i) = owner {
                by_doc.entry(self.objects[*i].doc).or_default().push(k);
            }
        }
        let mut open: Option<(usize, Option<std::fs::File>)> = None;
        for (doc, finding_indexes) in by_doc {
            let d = &self.docs[doc];
            if open.as_ref().is_none_or(|(f, _)| *f != d.file) {
                let file = match &self.files[d.file].text {
                    TextSource::OnDisk(path) => std::fs::File::open(path).ok(),
                    TextSource::Kept(_) => None,
                };
                open = Some((d.file, file));
            }
            let handle = open.as_ref().and_then(|(_, f)| f.as_ref());
            let Some(text) = self.doc_text(doc, handle) else {
                continue;
            };
            let Some(tree) = self.doc_tree(doc, &text) else {
                continue;
            };
            for k in finding_indexes {
                let (f, owner) = &mut found[k];
                let Some(stored) = owner.map(|i| &self.objects[i]) else {
                    continue;
                };
                let node = stored.item.iter().try_fold(&tree, |t, &i| {
                    t.key("items").and_then(|items| items.item(i))
                });
                if let Some(line) = node.map(|n| n.locate(&f.path)).filter(|&l| l > 0) {
                    f.line = Some(line);
                }
            }
        }
    }

    /// The text of document `doc`: from the kept text, or read again from
    /// `file` (`None` when it cannot be read or no longer matches).
    pub(super) fn doc_text(
        &self,
        doc: usize,
        file: Option<&std::fs::File>,
    ) -> Option<Cow<'_, str>> {
        let d = &self.docs[doc];
        match (&d.body, &self.files[d.file].text) {
            (DocBody::Owned(t), _) => Some(Cow::Borrowed(t)),
            (DocBody::Range(r), TextSource::Kept(text)) => text.get(r.clone()).map(Cow::Borrowed),
            (DocBody::Range(r), TextSource::OnDisk(_)) => {
                use std::io::{Read, Seek, SeekFrom};
                let mut file = file?;
                let mut bytes = vec![0; r.len()];
                file.seek(SeekFrom::Start(r.start as u64)).ok()?;
                file.read_exact(&mut bytes).ok()?;
                if text_hash(&bytes) != d.hash {
                    return None;
                }
                String::from_utf8(bytes).ok().map(Cow::Owned)
            }
        }
    }

    /// The line tree of document `doc` (its text `text`), lines counted in its file.
    pub(super) fn doc_tree(&self, doc: usize, text: &str) -> Option<LineTree> {
        let d = &self.docs[doc];
        Some(line_tree(text)?.shifted(d.first_line - 1))
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint, load_paths};
    use crate::rules::Config;

    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  \
                           selector: {app: web}\n  sessionAffinity: ClientIP\n";

    /// Lines come from the file read again; if it changed since, the finding
    /// keeps its object's first line instead of pointing at a wrong one.
    #[test]
    fn lines_are_read_again_from_the_file_and_a_changed_file_is_not_trusted() {
        let dir = std::env::temp_dir().join(format!("so-loaded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("svc.yaml");
        std::fs::write(&file, format!("# comment\n---\n{SERVICE}")).expect("write");
        let loaded = load_paths(std::slice::from_ref(&file));
        let lines = |loaded| -> Vec<Option<usize>> {
            lint(loaded, &Config::default())
                .iter()
                .map(|f| f.line)
                .collect()
        };
        assert_eq!(lines(&loaded), [Some(9)], "the sessionAffinity line");
        std::fs::write(&file, format!("# a longer comment\n---\n{SERVICE}")).expect("write");
        assert_eq!(lines(&loaded), [Some(3)], "the object's first line");
        std::fs::remove_dir_all(&dir).ok();
    }
}
