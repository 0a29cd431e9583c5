//! The PodDisruptionBudgets (policy/v1): the app's `<name>`, and one per worker.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use std::collections::BTreeMap;

use super::{Context, labels, names};

/// The app's PDB, over the web tier's pods.
pub(crate) fn build(ctx: &Context<'_>) -> PodDisruptionBudget {
    budget(
        ctx,
        names::app(ctx.name),
        labels::app(ctx.name),
        labels::app_selector(ctx.name),
    )
}

/// A PDB `name` over the pods `selector` matches (the app's or a worker's).
///
/// `maxUnavailable: 1` rather than `minAvailable: 1`:
/// - with `replicas.min >= 2` (the default) at least one pod always keeps
///   serving during voluntary disruptions (drains, upgrades), and
///   capacity drops by at most one pod however far the HPA scaled out,
///   whereas `minAvailable: 1` would let a drain evict all but one of ten
///   pods at once;
/// - with `replicas.min == 1` the user accepted a single replica, and
///   `minAvailable: 1` would block every node drain forever, while
///   `maxUnavailable: 1` lets it proceed.
///
/// `unhealthyPodEvictionPolicy: AlwaysAllow` lets drains evict pods that are
/// not ready anyway (crash-looping), which would otherwise block them.
pub(super) fn budget(
    ctx: &Context<'_>,
    name: String,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ctx.meta(name, labels),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            min_available: None,
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn basic_spec_whole_object() {
        let got = to_json(
            &children(&basic(), &BuildInputs::default())
                .expect("builds")
                .pdb,
        );
        assert_eq!(
            got,
            json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {
                    "name": "shop",
                    "namespace": "prod",
                    "labels": app_labels(),
                    "ownerReferences": owner()
                },
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": app_selector()},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow"
                }
            })
        );
    }
}
