//! Labels of the child objects.
//!
//! Every object carries the recommended `app.kubernetes.io/*` labels:
//!
//! | label | app objects | managed Redis objects |
//! | --- | --- | --- |
//! | `name` | `<app>` | `redis` |
//! | `instance` | `<app>` | `<app>` |
//! | `component` | `app` | `session-store` |
//! | `part-of` | `<app>` | `<app>` |
//! | `managed-by` | `stateless-operator` | `stateless-operator` |
//!
//! Selectors use the stable subset `name`, `instance`, `component`: a
//! Deployment's selector is immutable, so it must never include anything
//! that could change (image tags, versions). `instance` is the StatelessApp,
//! so `app.kubernetes.io/instance=<app>,app.kubernetes.io/managed-by=stateless-operator`
//! selects every child of one app.

use std::collections::BTreeMap;

/// `app.kubernetes.io/name`.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/component`.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/part-of`.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Value of [`MANAGED_BY`] on every child.
pub const MANAGER: &str = "stateless-operator";
/// Value of [`COMPONENT`] on the app's own objects.
pub const COMPONENT_APP: &str = "app";
/// Value of [`COMPONENT`] on the managed Redis objects.
pub const COMPONENT_SESSION_STORE: &str = "session-store";
/// Value of [`NAME`] on the managed Redis objects.
pub const REDIS_NAME: &str = "redis";
/// Value of [`COMPONENT`] on the JWT signing key Secret.
pub const COMPONENT_IDENTITY: &str = "identity";
/// Value of [`NAME`] on the JWT signing key Secret.
pub const SIGNING_KEYS_NAME: &str = "jwt-signing-keys";

/// Selector labels of the app's pods (Deployment selector, Service, PDB,
/// topology spread, NetworkPolicy peer).
pub fn app_selector(app_name: &str) -> BTreeMap<String, String> {
    selector(app_name, app_name, COMPONENT_APP)
}

/// All labels of the app's objects and pods.
pub fn app(app_name: &str) -> BTreeMap<String, String> {
    common(app_selector(app_name), app_name)
}

/// Selector labels of the managed Redis pod.
pub fn redis_selector(app_name: &str) -> BTreeMap<String, String> {
    selector(REDIS_NAME, app_name, COMPONENT_SESSION_STORE)
}

/// All labels of the managed Redis objects and pod.
pub fn redis(app_name: &str) -> BTreeMap<String, String> {
    common(redis_selector(app_name), app_name)
}

/// All labels of the JWT signing key Secret.
pub fn signing_keys(app_name: &str) -> BTreeMap<String, String> {
    common(
        selector(SIGNING_KEYS_NAME, app_name, COMPONENT_IDENTITY),
        app_name,
    )
}

/// Value of [`COMPONENT`] on the CronJobs of spec.schedules and their pods.
pub const COMPONENT_SCHEDULE: &str = "schedule";

/// All labels of a schedule's CronJob and of its Jobs' pods: never the app's
/// selector, so its Service and PodDisruptionBudget do not count job pods.
pub fn schedule(app_name: &str, schedule: &str) -> BTreeMap<String, String> {
    common(selector(schedule, app_name, COMPONENT_SCHEDULE), app_name)
}

/// Value of [`COMPONENT`] on the Deployments of spec.workers and their pods.
pub const COMPONENT_WORKER: &str = "worker";

/// Selector labels of a worker's pods (its Deployment, HPA target, topology
/// spread): never the app's, so the app's Service and PodDisruptionBudget do
/// not count worker pods.
pub fn worker_selector(app_name: &str, worker: &str) -> BTreeMap<String, String> {
    selector(worker, app_name, COMPONENT_WORKER)
}

/// All labels of a worker's Deployment, HPA and pods.
pub fn worker(app_name: &str, worker: &str) -> BTreeMap<String, String> {
    common(worker_selector(app_name, worker), app_name)
}

/// Labels selecting every child of one StatelessApp (for list/watch).
pub fn owned_by(app_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE.to_string(), app_name.to_string()),
        (MANAGED_BY.to_string(), MANAGER.to_string()),
    ])
}

/// [`owned_by`] as a label selector string.
pub fn owned_by_selector(app_name: &str) -> String {
    owned_by(app_name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn selector(name: &str, instance: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_string(), name.to_string()),
        (INSTANCE.to_string(), instance.to_string()),
        (COMPONENT.to_string(), component.to_string()),
    ])
}

fn common(mut labels: BTreeMap<String, String>, app_name: &str) -> BTreeMap<String, String> {
    labels.insert(PART_OF.to_string(), app_name.to_string());
    labels.insert(MANAGED_BY.to_string(), MANAGER.to_string());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_subsets_of_labels() {
        for (selector, labels) in [
            (app_selector("shop"), app("shop")),
            (redis_selector("shop"), redis("shop")),
        ] {
            for (k, v) in &selector {
                assert_eq!(labels.get(k), Some(v));
            }
            assert_eq!(labels.len(), selector.len() + 2);
        }
    }

    #[test]
    fn app_and_redis_selectors_never_overlap() {
        // An app named like another app's Redis must not select its pods.
        assert_ne!(app_selector("redis"), redis_selector("redis"));
        assert_ne!(app_selector("shop-redis"), redis_selector("shop"));
        // A worker named like the app, or an app named like a worker.
        assert_ne!(app_selector("shop"), worker_selector("shop", "shop"));
        assert!(!crate::controller::compliance::selects(
            Some(&app_selector("shop")),
            &worker("shop", "shop")
        ));
    }

    #[test]
    fn owned_by_selector_string() {
        assert_eq!(
            owned_by_selector("shop"),
            "app.kubernetes.io/instance=shop,app.kubernetes.io/managed-by=stateless-operator"
        );
    }
}
