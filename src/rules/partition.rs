//! Independent groups of objects, so that a large input can be evaluated one
//! group at a time (`lint` keeps only one group's parsed objects in memory).
//!
//! The rules compare objects of one namespace, with two exceptions: a route or
//! policy may name a Service of another namespace (`backendRefs[].namespace`,
//! a DestinationRule host `svc.other.svc.cluster.local`, ...), and a claim may be
//! bound to a cluster-scoped PersistentVolume. A group is therefore a set of
//! namespaces closed under those references. Rather than list every reference
//! form (each new routing kind would have to remember to add its own), the hint
//! of an object that is not a workload or ConfigMap records every DNS-label word
//! of its string values, and any word that is the name of a namespace in the
//! input joins the two namespaces. Over-joining only costs memory; the test
//! `grouped_evaluation_equals_whole_input_evaluation` (in `tests/lint_corpus.rs`)
//! checks that grouped and whole-input evaluation agree.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::model::{Kind, classify, ns_of, str_at};

/// What partitioning needs to know of one object, taken when it is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupHint {
    namespace: Box<str>,
    /// DNS-label words of the object's string values that may name another
    /// namespace, space-separated in one allocation (hints of large inputs
    /// are many); empty for workloads, ConfigMaps and unknown kinds.
    mentions: Box<str>,
    /// A claim may be bound to a cluster-scoped PersistentVolume.
    needs_cluster_scope: bool,
}

impl GroupHint {
    /// The hint of one object.
    pub fn of(v: &Value) -> Self {
        let mut words = BTreeSet::new();
        collect_words(v, &mut words);
        GroupHint::from_parts(
            str_at(v, &["kind"]).unwrap_or(""),
            str_at(v, &["apiVersion"]).unwrap_or(""),
            ns_of(v),
            words,
        )
    }

    /// The hint of an object read without building its value: its `kind`,
    /// `apiVersion` and `metadata.namespace` (`""` when not text), and the
    /// words of all its text values (see [`GroupHint::words_of`]).
    pub fn from_parts(
        kind: &str,
        api_version: &str,
        namespace: &str,
        mut words: BTreeSet<&str>,
    ) -> Self {
        if !GroupHint::uses_words(kind, api_version) {
            words.clear();
        }
        let kind = classify(kind, api_version);
        words.remove(namespace);
        GroupHint {
            namespace: namespace.into(),
            mentions: words.into_iter().collect::<Vec<_>>().join(" ").into(),
            needs_cluster_scope: kind == Some(Kind::Claim),
        }
    }

    /// Whether the hint of an object of this kind keeps its words. Workloads
    /// and their config look only into their own namespace; any other kind
    /// the engine reads (and any it learns later) may name another.
    pub fn uses_words(kind: &str, api_version: &str) -> bool {
        classify(kind, api_version).is_some_and(|k| {
            !k.is_workload() && !matches!(k, Kind::ConfigMap | Kind::Hpa | Kind::ScaledObject)
        })
    }

    /// The words of one text value that may name a namespace: `svc.ns`,
    /// `svc.ns.svc.cluster.local`, `ns/name` give every part.
    pub fn words_of<'s>(text: &'s str, out: &mut BTreeSet<&'s str>) {
        for word in text.split(['.', '/', ':']) {
            if is_dns_label(word) {
                out.insert(word);
            }
        }
    }
}

/// A namespace name is a DNS label: 1-63 of `a-z`, `0-9`, `-`.
fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn collect_words<'v>(v: &'v Value, out: &mut BTreeSet<&'v str>) {
    match v {
        Value::String(s) => GroupHint::words_of(s, out),
        Value::Array(items) => items.iter().for_each(|i| collect_words(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_words(i, out)),
        _ => {}
    }
}

/// Groups of object indexes (into `hints`) that the rules can evaluate
/// independently: no rule looks from one group into another. Groups are in
/// the order of their first object, each group's indexes ascending.
pub fn partition<'h>(hints: impl Iterator<Item = &'h GroupHint> + Clone) -> Vec<Vec<usize>> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for h in hints.clone() {
        let next = ids.len();
        ids.entry(&h.namespace).or_insert(next);
    }
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut join = |a: usize, b: usize| {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    let cluster_scope = ids.get("").copied();
    for h in hints.clone() {
        let own = ids[&*h.namespace];
        for m in h.mentions.split_ascii_whitespace() {
            if let Some(&other) = ids.get(m) {
                join(own, other);
            }
        }
        if h.needs_cluster_scope
            && let Some(cluster) = cluster_scope
        {
            join(own, cluster);
        }
    }
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, h) in hints.enumerate() {
        let r = root(&mut parent, ids[&*h.namespace]);
        let g = *group_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hints(objects: &[Value]) -> Vec<GroupHint> {
        objects.iter().map(GroupHint::of).collect()
    }

    #[test]
    fn namespaces_are_groups_of_their_own() {
        let objs = [
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "one"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b", "namespace": "two"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "one"}}),
        ];
        assert_eq!(partition(hints(&objs).iter()), vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn a_route_to_another_namespace_joins_the_two() {
        let objs = [
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "data"}}),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                   "metadata": {"name": "r", "namespace": "web"},
                   "spec": {"host": "db.data.svc.cluster.local"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "other"}}),
        ];
        assert_eq!(partition(hints(&objs).iter()), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn workloads_do_not_join_namespaces_they_mention() {
        // An env value naming another namespace is not a reference the rules follow.
        let objs = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "one"},
                   "spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "NS", "value": "two"}]}]}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b", "namespace": "two"}}),
        ];
        assert_eq!(partition(hints(&objs).iter()), vec![vec![0], vec![1]]);
    }

    #[test]
    fn claims_join_the_cluster_scoped_volumes() {
        let objs = [
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"}}),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": "app"},
                   "spec": {"volumeName": "pv1"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "else"}}),
        ];
        assert_eq!(partition(hints(&objs).iter()), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn hints_skip_words_that_cannot_be_namespaces() {
        let h = GroupHint::of(&json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "own", "annotations": {"a": "Not A Label, UPPER.ok"}}}));
        assert_eq!(&*h.mentions, "ok s v1");
    }
}
