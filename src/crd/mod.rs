//! The `StatelessApp` API (`stateless.dev/v1alpha1`): types, defaults and the
//! generated CustomResourceDefinition. No reconcile logic lives here.
//!
//! - [`StatelessApp`] / [`StatelessAppSpec`] / [`StatelessAppStatus`]: the resource.
//! - [`definition`] / [`definition_yaml`]: the CRD, as installed from
//!   `crds/statelessapps.stateless.dev.yaml` (kept in sync by `tests/crd_drift.rs`).
//! - [`StatelessApp::referenced_config`]: ConfigMaps/Secrets the pods read.

mod config_refs;
mod spec;
mod status;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use config_refs::{ConfigKind, ConfigRef};
pub use spec::*;
pub use status::{
    MAX_STATUS_VIOLATIONS, SessionStoreStatus, StatelessAppStatus, Violation, condition_types,
};

/// API group of the resource.
pub const GROUP: &str = "stateless.dev";
/// API version of the resource.
pub const VERSION: &str = "v1alpha1";
/// Kind of the resource.
pub const KIND: &str = "StatelessApp";
/// Name of the CustomResourceDefinition object.
pub const CRD_NAME: &str = "statelessapps.stateless.dev";

/// Rendering the CRD failed.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD could not be serialized to YAML.
    #[error("serializing the {CRD_NAME} CustomResourceDefinition to YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

/// The StatelessApp CustomResourceDefinition, as it is installed.
pub fn definition() -> CustomResourceDefinition {
    StatelessApp::crd()
}

/// [`definition`] as a YAML document, exactly what `stateless-operator crd` prints.
pub fn definition_yaml() -> Result<String, CrdError> {
    Ok(serde_saphyr::to_string(&definition())?)
}
