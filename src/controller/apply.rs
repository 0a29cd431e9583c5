//! Server-side apply that sends nothing when nothing changed.
//!
//! An SSA patch that changes nothing is still a write request (audited,
//! admission-checked, rate-limited). So before patching, the desired object is
//! compared with the live one: the apply is skipped when every field we set is
//! already there with the same value *and* the live object carries the hash of
//! exactly this desired object. The hash catches what a subset check cannot: a
//! field we used to set and no longer want (SSA removes it only if we apply).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource, ResourceExt};

use crate::build::{FIELD_MANAGER, is_controlled_by};
use crate::crd::StatelessApp;

use super::leader::Leadership;
use super::{Context, Error};

/// Annotation with the digest of the desired object as last applied.
pub const APPLIED_HASH_ANNOTATION: &str = "stateless.dev/applied-hash";

/// What [`apply`] did.
#[derive(Debug)]
pub enum Applied<K> {
    /// The object did not exist and was created.
    Created(K),
    /// The object existed and differed; it was patched.
    Updated(K),
    /// Nothing to do; no request was sent.
    Unchanged(K),
}

impl<K> Applied<K> {
    pub fn object(&self) -> &K {
        match self {
            Applied::Created(k) | Applied::Updated(k) | Applied::Unchanged(k) => k,
        }
    }

    pub fn changed(&self) -> bool {
        !matches!(self, Applied::Unchanged(_))
    }
}

/// Stamp `desired` with its own digest, then server-side apply it unless the
/// live object (from the cache: no read is sent, but before a create) already matches. Conflicts are forced: the operator is the
/// only intended owner of the fields it sets. An existing object of that name
/// that `app` does not control (a user's own, or another app's) is never
/// taken over.
pub async fn apply<K>(
    api: &Api<K>,
    live: Option<&K>,
    app: &StatelessApp,
    leadership: &Leadership,
    mut desired: K,
) -> Result<Applied<K>, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let ctx = |verb: &'static str| Error::kube(verb, &kind, &namespace, &name);

    let digest = digest_of(&desired).map_err(|source| Error::Serialize {
        kind: kind.clone(),
        source,
    })?;
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.to_string(), digest);
    let desired_json = serde_json::to_value(&desired).map_err(|source| Error::Serialize {
        kind: kind.clone(),
        source,
    })?;

    // Most caches hold only objects with the operator's labels: a user's
    // object of the same name is not in them. Before a create, ask the API
    // server (one read, only when the cache has nothing) so that it is
    // reported, not taken over by a forced apply.
    let found;
    let live = match live {
        Some(live) => Some(live),
        None => {
            found = api.get_opt(&name).await.map_err(ctx("get"))?;
            found.as_ref()
        }
    };
    if let Some(live) = live {
        if !is_controlled_by(live.meta(), app) {
            return Err(Error::ChildConflict {
                kind,
                namespace,
                name,
            });
        }
        let live_json = serde_json::to_value(live).map_err(|source| Error::Serialize {
            kind: kind.clone(),
            source,
        })?;
        if is_subset(&desired_json, &live_json) {
            return Ok(Applied::Unchanged(live.clone()));
        }
    }
    may_write(leadership, "apply", &kind, &namespace, &name)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patched = api
        .patch(&name, &params, &Patch::Apply(&desired_json))
        .await
        .map_err(ctx("apply"))?;
    Ok(match live {
        None => Applied::Created(patched),
        Some(_) => Applied::Updated(patched),
    })
}

/// The last check before any write of the controller: is this replica
/// (still) the leader? See [`Leadership`].
pub fn may_write(
    leadership: &Leadership,
    verb: &'static str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), Error> {
    if leadership.may_write() {
        Ok(())
    } else {
        Err(Error::NotLeader {
            verb,
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// How a delete guarded by preconditions ended.
#[derive(Debug, PartialEq, Eq)]
pub enum GuardedDelete {
    Deleted,
    /// The Secret changed or went meanwhile (409 or 404): nothing deleted.
    Missed,
}

/// Delete `secret` only if it still is the one read: the same uid and, with
/// `same_version`, the same resourceVersion. The operator may not update
/// Secrets, so it replaces its own by a delete like this and a create.
pub async fn delete_secret_guarded(
    ctx: &Context,
    namespace: &str,
    secret: &Secret,
    same_version: bool,
) -> Result<GuardedDelete, Error> {
    let name = secret.name_any();
    may_write(
        &ctx.settings.leadership,
        "delete",
        "Secret",
        namespace,
        &name,
    )?;
    let guarded = DeleteParams {
        preconditions: Some(Preconditions {
            uid: secret.metadata.uid.clone(),
            resource_version: secret
                .metadata
                .resource_version
                .clone()
                .filter(|_| same_version),
        }),
        ..DeleteParams::default()
    };
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    match api.delete(&name, &guarded).await {
        Ok(_) => {
            ctx.metrics.count_write("Secret", "delete");
            ctx.caches
                .secret_meta
                .remember_deleted(namespace, &name, secret.metadata.uid.clone());
            Ok(GuardedDelete::Deleted)
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(GuardedDelete::Missed),
        Err(e) => Err(Error::kube("delete", "Secret", namespace, &name)(e)),
    }
}

/// Create `secret` (with the operator's field manager). The operator may
/// only create and delete Secrets, never update them (no server-side apply
/// that could take over a user's), so its Secrets go through here. `None`
/// when one of that name exists already (409): nothing written, and whose it
/// is is the caller's question.
pub async fn create_secret(ctx: &Context, secret: &Secret) -> Result<Option<Secret>, Error> {
    let (namespace, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
    may_write(
        &ctx.settings.leadership,
        "create",
        "Secret",
        &namespace,
        &name,
    )?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    match api.create(&params, secret).await {
        Ok(created) => {
            ctx.metrics.count_write("Secret", "create");
            Ok(Some(created))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(Error::kube("create", "Secret", &namespace, &name)(e)),
    }
}

/// Hex SHA-256 of the object's JSON. serde_json maps are sorted and the
/// builders emit lists in a fixed order, so equal objects hash equal.
pub fn digest_of<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let bytes = serde_json::to_vec(value)?;
    Ok(hex(&Sha256::digest(&bytes)[..16]))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Is every field of `desired` present in `live` with an equal value?
///
/// Lists must have the same length (element by element subset): a list we own
/// is owned whole. Empty maps/lists/nulls we send count as present when the
/// server dropped them. Resource quantities compare by value ("0.5" = "500m"),
/// because the API server normalises them.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => is_subset(dv, lv),
            None => is_empty(dv),
        }),
        (Value::Object(d), Value::Null) => d.values().all(is_empty),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::Array(d), Value::Null) => d.is_empty(),
        (Value::String(d), Value::String(l)) => d == l || quantities_equal(d, l),
        (Value::Null, _) => true,
        (d, l) => d == l,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Compare two Kubernetes quantity strings by value; false if either is not one.
fn quantities_equal(a: &str, b: &str) -> bool {
    match (parse_quantity(a), parse_quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()),
        _ => false,
    }
}

fn parse_quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let s = s.trim();
    if s.is_empty()
        || !s.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-')
    {
        return None;
    }
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = s.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_server_defaults_but_not_changes() {
        let desired = json!({"spec": {"a": 1, "list": [{"x": "y"}]}});
        let live =
            json!({"spec": {"a": 1, "b": 2, "list": [{"x": "y", "default": true}]}, "status": {}});
        assert!(is_subset(&desired, &live));
        assert!(!is_subset(&json!({"spec": {"a": 2}}), &live));
        assert!(!is_subset(&json!({"spec": {"c": 1}}), &live));
        // A list we own is owned whole: an extra live element means a difference.
        assert!(!is_subset(&json!({"spec": {"list": []}}), &live));
    }

    #[test]
    fn empty_values_match_absent_fields() {
        let live = json!({"metadata": {"name": "a"}});
        assert!(is_subset(
            &json!({"metadata": {"name": "a", "annotations": {}}}),
            &live
        ));
        assert!(is_subset(&json!({"metadata": {"labels": null}}), &live));
        assert!(!is_subset(
            &json!({"metadata": {"labels": {"k": "v"}}}),
            &live
        ));
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(is_subset(&json!({"cpu": "0.5"}), &json!({"cpu": "500m"})));
        assert!(is_subset(
            &json!({"memory": "1Gi"}),
            &json!({"memory": "1024Mi"})
        ));
        assert!(!is_subset(
            &json!({"memory": "1G"}),
            &json!({"memory": "1Gi"})
        ));
        assert!(!is_subset(
            &json!({"image": "a:1"}),
            &json!({"image": "a:2"})
        ));
        assert!(parse_quantity("RuntimeDefault").is_none());
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = digest_of(&json!({"b": 1, "a": [1, 2]})).expect("digest");
        let b = digest_of(&json!({"a": [1, 2], "b": 1})).expect("digest");
        let c = digest_of(&json!({"a": [2, 1], "b": 1})).expect("digest");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 32);
    }
}
