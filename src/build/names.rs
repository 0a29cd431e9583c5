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
}
