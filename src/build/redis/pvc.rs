//! PersistentVolumeClaim `<name>-redis-data`, only with persistence enabled.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};

use crate::build::{Context, labels, names};
use crate::crd::ManagedSessionStore;

/// The claim, or `None` without persistence. Kubernetes only lets a claim
/// grow, so shrinking `persistence.size` is rejected by the API server.
pub(super) fn build(
    ctx: &Context<'_>,
    settings: &ManagedSessionStore,
) -> Option<PersistentVolumeClaim> {
    let persistence = &settings.persistence;
    persistence.enabled.then(|| PersistentVolumeClaim {
        metadata: ctx.meta(names::redis_data(ctx.name), labels::redis(ctx.name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    persistence.size.clone(),
                )])),
                limits: None,
            }),
            storage_class_name: persistence.storage_class_name.clone(),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::build::test_support::*;
    use crate::build::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn persistence_on_whole_object() {
        let app = app(json!({
            "image": "x",
            "sessionStore": {"managed": {"persistence": {
                "enabled": true, "size": "2Gi", "storageClassName": "fast"
            }}}
        }));
        let pvc = children(&app, &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed")
            .pvc
            .expect("persistence on");
        assert_eq!(
            to_json(&pvc),
            json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": "shop-redis-data",
                    "namespace": "prod",
                    "labels": redis_labels(),
                    "ownerReferences": owner()
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "2Gi"}},
                    "storageClassName": "fast"
                }
            })
        );
    }

    #[test]
    fn default_size_and_class() {
        let app = app(json!({
            "image": "x",
            "sessionStore": {"managed": {"persistence": {"enabled": true}}}
        }));
        let pvc = children(&app, &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed")
            .pvc
            .expect("persistence on");
        assert_eq!(
            to_json(&pvc)["spec"],
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
        );
    }

    #[test]
    fn persistence_off_no_claim() {
        let redis = children(&basic(), &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed");
        assert!(redis.pvc.is_none());
    }
}
