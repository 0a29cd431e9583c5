//! The `StatelessApp` API (`stateless.dev/v1alpha1`): types, defaults and the
//! generated CustomResourceDefinition. No reconcile logic lives here.
//!
//! - [`StatelessApp`] / [`StatelessAppSpec`] / [`StatelessAppStatus`]: the resource.
//! - [`definition`] / [`definition_yaml`]: the CRD, as installed from
//!   `crds/statelessapps.stateless.dev.yaml` (kept in sync by `tests/crd_drift.rs`).
//! - [`StatelessApp::referenced_config`]: ConfigMaps/Secrets the pods read.
//!
//! Validation lives in the schema, so the API server rejects a bad spec with
//! a message saying what to fix (CEL `x-kubernetes-validations`):
//! `replicas.min >= 1`, `replicas.min <= replicas.max`, percentages 1..100,
//! ports 1..65535, at least one and uniquely named ports, `metadata.name` at
//! most [`MAX_NAME_LENGTH`] characters and a DNS-1035 label, `external`
//! required with (and only with) `sessionStore.type: external`, `managed`
//! only with type managed, and no node-local volumes (nor claims or network
//! disks without `policy.allowPersistentVolumes`, see [`volumes`]).

pub mod bindings;
mod config_refs;
pub mod identity;
pub mod object_storage;
pub mod schedules;
mod spec;
mod status;
pub mod volumes;
pub mod workers;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

pub use bindings::ServiceBindingsSpec;
pub use config_refs::{ConfigKind, ConfigRef};
pub use identity::{IdentitySpec, JwtAlgorithm, JwtSpec};
pub use object_storage::{ObjectStorageCredentials, ObjectStorageSpec};
pub use schedules::ScheduleSpec;
pub use spec::*;
pub use status::{
    MAX_STATUS_VIOLATIONS, ScheduleStatus, SessionStoreStatus, SigningKeysStatus,
    StatelessAppStatus, Violation, WorkerStatus, condition_types,
};
pub use workers::WorkerSpec;

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
    let mut crd = StatelessApp::crd();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            drop_null_enum_values(schema);
        }
    }
    crd
}

/// [`definition`] as a YAML document, exactly what `stateless-operator crd` prints.
pub fn definition_yaml() -> Result<String, CrdError> {
    Ok(serde_saphyr::to_string(&definition())?)
}

/// schemars renders an optional enum as `nullable: true` with `null` among
/// the `enum` values, but the API server then rejects an explicit `null`
/// ("Unsupported value"). Without both, a `null` is pruned like an absent
/// field, which is what `Option` means.
fn drop_null_enum_values(schema: &mut JSONSchemaProps) {
    if let Some(values) = schema.enum_.as_mut()
        && values.iter().any(|v| v.0.is_null())
    {
        values.retain(|v| !v.0.is_null());
        schema.nullable = None;
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        drop_null_enum_values(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => drop_null_enum_values(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => {
            items.iter_mut().for_each(drop_null_enum_values)
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        drop_null_enum_values(extra);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(drop_null_enum_values);
    }
}

#[cfg(test)]
mod tests;
