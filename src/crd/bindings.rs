//! `spec.serviceBindings`: the session store and the object storage as
//! service bindings (the servicebinding.io workload projection), for apps and
//! libraries that read `$SERVICE_BINDING_ROOT/<name>/<entry>` files (Spring
//! Cloud Bindings, Quarkus, pyservicebinding, ...) instead of env vars.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Default of `serviceBindings.root`.
pub const DEFAULT_BINDING_ROOT: &str = "/bindings";
/// Name (directory) of the session store's binding.
pub const SESSION_STORE_BINDING: &str = "session-store";
/// Name (directory) of the object storage's binding.
pub const OBJECT_STORAGE_BINDING: &str = "object-storage";

/// Project the session store and the object storage into every container as service bindings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBindingsSpec {
    /// Directory of the bindings in every container (default /bindings), also set as SERVICE_BINDING_ROOT. Each binding is a directory of files: `session-store` (type redis: host, port, username, password, database and uri for the managed Redis; uri for an external one) and `object-storage` (type s3: bucket, endpoint, region, force-path-style, access-key-id, secret-access-key). Secret entries come from their Secrets by reference; nothing is copied.
    #[serde(default = "default_root")]
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")
    )]
    #[x_kube(validation = Rule::new("self != '/tmp' && !self.startsWith('/tmp/')").message("serviceBindings.root must not be /tmp or below it: /tmp is the pod's writable scratch volume; use e.g. /bindings"))]
    pub root: String,
}

impl Default for ServiceBindingsSpec {
    fn default() -> Self {
        Self {
            root: default_root(),
        }
    }
}

fn default_root() -> String {
    DEFAULT_BINDING_ROOT.to_string()
}
