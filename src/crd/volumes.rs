//! Which pod volumes a StatelessApp may mount.
//!
//! Creating a StatelessApp is as powerful as creating the Deployment it
//! becomes, so the operator must not mount for a user what would pin the app
//! to a node or keep its state on the app tier. One list of volume types
//! feeds both the CRD's CEL rules (the API server refuses the spec) and
//! [`refused_volumes`] (the builder refuses it again, for objects stored
//! before the CRD said so).

use k8s_openapi::api::core::v1::Volume;
use kube::core::Rule;

use super::StatelessAppSpec;

/// Volume types that are never allowed: `hostPath` puts data on one node
/// (and gives the pod that node's files); `gitRepo` is deprecated and runs
/// git on the node.
pub const NODE_LOCAL_VOLUME_TYPES: &[&str] = &["hostPath", "gitRepo"];

/// Volume types that keep state beyond a pod: a PersistentVolumeClaim or a
/// network or cloud disk mounted directly. Allowed only with the waiver
/// `spec.policy.allowPersistentVolumes`.
pub const PERSISTENT_VOLUME_TYPES: &[&str] = &[
    "persistentVolumeClaim",
    "nfs",
    "iscsi",
    "cephfs",
    "rbd",
    "glusterfs",
    "fc",
    "flexVolume",
    "awsElasticBlockStore",
    "gcePersistentDisk",
    "azureDisk",
    "azureFile",
    "cinder",
    "vsphereVolume",
    "portworxVolume",
    "photonPersistentDisk",
    "quobyte",
    "scaleIO",
    "storageos",
    "flocker",
];

const NODE_LOCAL_HINT: &str = "a node directory pins the app to one node and is lost when the pod moves; keep uploads in object storage and sessions in the session store (spec.sessionStore)";

const PERSISTENT_HINT: &str = "a disk on the app tier keeps state that pins users to pods; move files to object storage and sessions to the session store (spec.sessionStore), or waive with spec.policy.allowPersistentVolumes.reason";

/// CEL: does volume `v` set one of `types`?
fn any_type(types: &[&str]) -> String {
    types
        .iter()
        .map(|t| format!("has(v.{t})"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// A CEL rule refusing `types` in `spec.volumes` (unless `waived_by` holds).
fn refusing(types: &[&str], waived_by: Option<&str>, hint: &str) -> Rule {
    let offending = any_type(types);
    let waiver = waived_by.map(|w| format!("{w} || ")).unwrap_or_default();
    let listed = types.join(", ");
    Rule::new(format!(
        "{waiver}!has(self.spec.volumes) || self.spec.volumes.all(v, !({offending}))"
    ))
    // A static message: a messageExpression naming the volumes costs more
    // than the API server's CEL budget for the whole schema allows.
    .message(format!("spec.volumes must not use {listed}: {hint}").as_str())
    .field_path(".spec.volumes")
}

/// The CRD rule for [`NODE_LOCAL_VOLUME_TYPES`].
pub fn node_local_rule() -> Rule {
    refusing(NODE_LOCAL_VOLUME_TYPES, None, NODE_LOCAL_HINT)
}

/// The CRD rule for [`PERSISTENT_VOLUME_TYPES`].
pub fn persistent_rule() -> Rule {
    refusing(
        PERSISTENT_VOLUME_TYPES,
        Some("(has(self.spec.policy) && has(self.spec.policy.allowPersistentVolumes))"),
        PERSISTENT_HINT,
    )
}

/// A volume of the spec that the operator will not mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedVolume {
    /// The volume's name.
    pub name: String,
    /// Its type, as spelled in the API (`hostPath`, `persistentVolumeClaim`, ...).
    pub volume_type: &'static str,
    /// Why, and what to do instead.
    pub hint: &'static str,
}

impl std::fmt::Display for RefusedVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spec.volumes {} uses {}: {}",
            self.name, self.volume_type, self.hint
        )
    }
}

/// The first type in `types` that `volume` sets.
fn type_of(volume: &Volume, types: &[&'static str]) -> Option<&'static str> {
    let value = serde_json::to_value(volume).ok()?;
    let fields = value.as_object()?;
    types.iter().copied().find(|t| fields.contains_key(*t))
}

/// The volumes of `spec` that the CRD rules refuse, the same decision
/// [`node_local_rule`] and [`persistent_rule`] make.
pub fn refused_volumes(spec: &StatelessAppSpec) -> Vec<RefusedVolume> {
    let waived = spec.policy.allow_persistent_volumes.is_some();
    spec.volumes
        .iter()
        .filter_map(|volume| {
            let (volume_type, hint) = match type_of(volume, NODE_LOCAL_VOLUME_TYPES) {
                Some(t) => (t, NODE_LOCAL_HINT),
                None if waived => return None,
                None => (type_of(volume, PERSISTENT_VOLUME_TYPES)?, PERSISTENT_HINT),
            };
            Some(RefusedVolume {
                name: volume.name.clone(),
                volume_type,
                hint,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PersistentVolumeWaiver;

    fn spec_with(volumes: serde_json::Value) -> StatelessAppSpec {
        serde_json::from_value(serde_json::json!({"image": "app:1", "volumes": volumes}))
            .expect("spec")
    }

    #[test]
    fn configuration_and_scratch_volumes_are_allowed() {
        let spec = spec_with(serde_json::json!([
            {"name": "config", "configMap": {"name": "app"}},
            {"name": "tls", "secret": {"secretName": "app-tls"}},
            {"name": "all", "projected": {"sources": []}},
            {"name": "info", "downwardAPI": {}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "csi", "csi": {"driver": "secrets-store.csi.k8s.io"}},
        ]));
        assert_eq!(refused_volumes(&spec), vec![]);
    }

    #[test]
    fn host_path_is_refused_even_with_the_waiver() {
        let mut spec = spec_with(serde_json::json!([
            {"name": "data", "hostPath": {"path": "/srv"}},
            {"name": "code", "gitRepo": {"repository": "https://example.com/x.git"}},
        ]));
        spec.policy.allow_persistent_volumes = Some(PersistentVolumeWaiver {
            reason: "legacy".into(),
        });
        let refused = refused_volumes(&spec);
        let names: Vec<_> = refused
            .iter()
            .map(|r| (r.name.as_str(), r.volume_type))
            .collect();
        assert_eq!(names, vec![("data", "hostPath"), ("code", "gitRepo")]);
        assert!(refused[0].to_string().contains("object storage"));
    }

    #[test]
    fn claims_and_network_disks_need_the_waiver() {
        let mut spec = spec_with(serde_json::json!([
            {"name": "uploads", "persistentVolumeClaim": {"claimName": "uploads"}},
            {"name": "share", "nfs": {"server": "nfs.example", "path": "/x"}},
        ]));
        let refused = refused_volumes(&spec);
        assert_eq!(
            refused.iter().map(|r| r.volume_type).collect::<Vec<_>>(),
            vec!["persistentVolumeClaim", "nfs"]
        );
        assert!(refused[0].to_string().contains("allowPersistentVolumes"));
        spec.policy.allow_persistent_volumes = Some(PersistentVolumeWaiver {
            reason: "media until the S3 move".into(),
        });
        assert_eq!(refused_volumes(&spec), vec![]);
    }

    #[test]
    fn rules_cover_every_listed_type() {
        let rule = serde_json::to_value(persistent_rule()).expect("rule");
        let expr = rule["rule"].as_str().expect("rule text");
        for t in PERSISTENT_VOLUME_TYPES {
            assert!(expr.contains(&format!("has(v.{t})")), "{t} in {expr}");
        }
        assert!(expr.starts_with("(has(self.spec.policy)"), "{expr}");
        let message = rule["message"].as_str().expect("message");
        assert!(
            message.starts_with("spec.volumes must not use persistentVolumeClaim, nfs,"),
            "{message}"
        );
        assert_eq!(rule["fieldPath"], ".spec.volumes");
        let node = serde_json::to_value(node_local_rule()).expect("rule");
        assert!(
            node["rule"]
                .as_str()
                .is_some_and(|r| r.contains("has(v.hostPath)"))
        );
    }
}
