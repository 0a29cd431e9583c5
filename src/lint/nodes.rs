//! Parsed YAML nodes: values as JSON, and for the documents that have
//! findings, the line of every node (so a finding points at its field).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

/// Lines of every node of one object, keyed like the JSON value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct LineTree {
    pub(super) line: usize,
    pub(super) children: Children,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum Children {
    #[default]
    Leaf,
    Map(Vec<(String, LineTree)>),
    Seq(Vec<LineTree>),
}

impl LineTree {
    pub(super) fn shifted(mut self, offset: usize) -> Self {
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

    pub(super) fn key(&self, key: &str) -> Option<&LineTree> {
        match &self.children {
            Children::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, t)| t),
            _ => None,
        }
    }

    pub(super) fn item(&self, i: usize) -> Option<&LineTree> {
        match &self.children {
            Children::Seq(s) => s.get(i),
            _ => None,
        }
    }

    /// Line of the deepest existing node along a finding path such as
    /// `spec.template.spec.volumes[0].hostPath` or
    /// `metadata.annotations["a.b/c"]`.
    pub(super) fn locate(&self, path: &str) -> usize {
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

/// A YAML node as JSON plus the line of every node (for a finding's field).
pub(super) struct Located {
    pub(super) value: Value,
    pub(super) tree: LineTree,
}

/// A YAML node as JSON only: what every document is read as first. Lines of
/// fields are found later, for the few documents that have findings.
pub(super) struct Plain(pub(super) Value);

/// A mapping key as text, whatever its YAML type.
pub(super) struct KeyText(pub(super) String);

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

/// How a node type is built from the parser's values: both node types convert
/// scalars the same way (integers beyond 64 bits as text, NaN as null, keys
/// of any scalar type as text; the last of duplicate keys wins, as with kubectl).
trait Node: Sized + for<'de> Deserialize<'de> {
    fn leaf(value: Value) -> Self;
    fn seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error>;
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl Node for Plain {
    fn leaf(value: Value) -> Self {
        Plain(value)
    }
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Plain(item)) = seq.next_element::<Plain>()? {
            values.push(item);
        }
        Ok(Plain(Value::Array(values)))
    }
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut values = Map::new();
        while let Some(KeyText(key)) = map.next_key::<KeyText>()? {
            let Plain(value) = map.next_value::<Plain>()?;
            values.insert(key, value);
        }
        Ok(Plain(Value::Object(values)))
    }
}

impl Node for Located {
    fn leaf(value: Value) -> Self {
        Located {
            value,
            tree: LineTree::default(),
        }
    }
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
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
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
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

impl<'de> Deserialize<'de> for Plain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor(PhantomData))
    }
}

struct NodeVisitor<N>(PhantomData<N>);

impl<'de, N: Node> Visitor<'de> for NodeVisitor<N> {
    type Value = N;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<N, E> {
        Ok(N::leaf(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<N, E> {
        Ok(N::leaf(Value::Number(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<N, E> {
        Ok(N::leaf(Value::Number(v.into())))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<N, E> {
        Ok(N::leaf(Value::String(v.to_string())))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<N, E> {
        Ok(N::leaf(Value::String(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<N, E> {
        Ok(N::leaf(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<N, E> {
        Ok(N::leaf(Value::String(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<N, E> {
        Ok(N::leaf(Value::String(v)))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<N, E> {
        Ok(N::leaf(Value::String(
            String::from_utf8_lossy(v).into_owned(),
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<N, E> {
        Ok(N::leaf(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<N, E> {
        Ok(N::leaf(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<N, D::Error> {
        N::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<N, A::Error> {
        N::seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<N, A::Error> {
        N::map(map)
    }
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
}
