//! Names of the child objects of a StatelessApp, in one place.
//!
//! With `metadata.name` at most [`crate::crd::MAX_NAME_LENGTH`] (52)
//! characters, every name here is a valid DNS label (at most 63).

/// The app's Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget.
pub fn app(app_name: &str) -> String {
    app_name.to_string()
}

/// The managed Redis: its ConfigMap, Deployment, Service, NetworkPolicy and Secret.
pub fn redis(app_name: &str) -> String {
    format!("{app_name}-redis")
}

/// The managed Redis Service's DNS name, as the app's pods reach it.
pub fn redis_host(app_name: &str, namespace: &str) -> String {
    format!("{}.{namespace}.svc", redis(app_name))
}

/// The managed Redis PersistentVolumeClaim (only with persistence enabled).
pub fn redis_data(app_name: &str) -> String {
    format!("{app_name}-redis-data")
}

/// The managed Redis Secret (keys `password` and `url`), created once by the controller.
pub fn redis_secret(app_name: &str) -> String {
    redis(app_name)
}

/// The managed Redis Secret's password while the Secret is being replaced
/// (after a rotation): written first, so that no crash between the delete
/// and the create loses the password the user chose.
pub fn redis_secret_staged(app_name: &str) -> String {
    format!("{app_name}-redis-next")
}

/// The Secret with the app's JWT signing keys (identity.jwt), mounted into its pods.
pub fn signing_keys(app_name: &str) -> String {
    format!("{app_name}-jwt")
}

/// The same keys while the Secret is being replaced at a rotation: written
/// first, so that no crash between the delete and the create loses a key.
pub fn signing_keys_staged(app_name: &str) -> String {
    format!("{app_name}-jwt-next")
}

/// The CronJob of the app's schedule `schedule` (spec.schedules[].name).
pub fn schedule(app_name: &str, schedule: &str) -> String {
    format!("{app_name}-{schedule}")
}

/// The Deployment and HorizontalPodAutoscaler of the app's worker `worker`
/// (spec.workers[].name).
pub fn worker(app_name: &str, worker: &str) -> String {
    format!("{app_name}-{worker}")
}

/// Every object, as (kind, name), that the controller of the app `app_name`
/// with these workers and schedules may create. Anything else that names
/// the app as its controller was put there by someone else: an
/// ownerReference is written by whoever creates the object.
pub fn children<'a>(
    app_name: &str,
    workers: impl IntoIterator<Item = &'a str>,
    schedules: impl IntoIterator<Item = &'a str>,
) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]
    .into_iter()
    .map(|kind| (kind, app(app_name)))
    .collect();
    out.extend(
        ["ConfigMap", "Deployment", "Service", "NetworkPolicy"]
            .into_iter()
            .map(|kind| (kind, redis(app_name))),
    );
    out.extend([
        ("Secret", redis_secret(app_name)),
        ("Secret", redis_secret_staged(app_name)),
        ("PersistentVolumeClaim", redis_data(app_name)),
        ("Secret", signing_keys(app_name)),
        ("Secret", signing_keys_staged(app_name)),
    ]);
    for w in workers {
        out.push(("Deployment", worker(app_name, w)));
        out.push(("HorizontalPodAutoscaler", worker(app_name, w)));
        out.push(("PodDisruptionBudget", worker(app_name, w)));
    }
    out.extend(
        schedules
            .into_iter()
            .map(|s| ("CronJob", schedule(app_name, s))),
    );
    out
}

/// Longest child-name suffix; with it a child name is at most 63 characters.
pub const LONGEST_SUFFIX: &str = "-redis-data";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::MAX_NAME_LENGTH;

    #[test]
    fn longest_allowed_name_gives_dns_labels() {
        let name = "a".repeat(MAX_NAME_LENGTH);
        for child in [
            app(&name),
            redis(&name),
            redis_data(&name),
            redis_secret(&name),
            redis_secret_staged(&name),
            signing_keys(&name),
            signing_keys_staged(&name),
        ] {
            assert!(child.len() <= 63, "{child} is {} long", child.len());
        }
        assert_eq!(redis_data(&name).len(), 63);
        assert_eq!(MAX_NAME_LENGTH + LONGEST_SUFFIX.len(), 63);
    }

    #[test]
    fn children_name_every_kind_the_controller_creates() {
        let all = children("web", ["jobs"], ["nightly"]);
        for (kind, name) in [
            ("Deployment", "web"),
            ("Service", "web"),
            ("HorizontalPodAutoscaler", "web"),
            ("PodDisruptionBudget", "web"),
            ("ConfigMap", "web-redis"),
            ("Deployment", "web-redis"),
            ("Service", "web-redis"),
            ("NetworkPolicy", "web-redis"),
            ("Secret", "web-redis"),
            ("Secret", "web-redis-next"),
            ("PersistentVolumeClaim", "web-redis-data"),
            ("Secret", "web-jwt"),
            ("Secret", "web-jwt-next"),
            ("Deployment", "web-jobs"),
            ("HorizontalPodAutoscaler", "web-jobs"),
            ("PodDisruptionBudget", "web-jobs"),
            ("CronJob", "web-nightly"),
        ] {
            assert!(
                all.contains(&(kind, name.to_string())),
                "{kind} {name} missing from {all:?}"
            );
        }
        assert_eq!(all.len(), 17, "{all:?}");
        assert!(!all.iter().any(|(kind, _)| *kind == "Ingress"));
    }
}
