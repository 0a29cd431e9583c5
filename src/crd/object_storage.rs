//! `spec.objectStorage`: the S3-compatible bucket where an app keeps uploads,
//! instead of a directory on a pod's disk.
//!
//! The operator does not create buckets: it wires an existing one (and the
//! Secret with its credentials, e.g. one written by Rook's ObjectBucketClaim
//! or by a platform's own provisioning) into every container as the
//! environment variables S3 SDKs read.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Default key of the access key id in the credentials Secret (the name AWS
/// tools use, and the key Rook's ObjectBucketClaim Secrets carry).
pub const DEFAULT_ACCESS_KEY_ID_KEY: &str = "AWS_ACCESS_KEY_ID";
/// Default key of the secret access key in the credentials Secret.
pub const DEFAULT_SECRET_ACCESS_KEY_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// Environment variables the operator sets in every container when
/// `objectStorage` is configured. A variable of the same name in `env` is
/// replaced: the objectStorage configuration is authoritative.
pub mod env {
    /// Access key id, from the credentials Secret.
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// Secret access key, from the credentials Secret.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// Region, for SDKs (set only when `region` is).
    pub const REGION: &str = "AWS_REGION";
    /// Region, for older SDKs and the AWS CLI v1 (set only when `region` is).
    pub const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    /// Endpoint of the S3 service, read by current AWS SDKs (set only when `endpoint` is).
    pub const ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
    /// The bucket.
    pub const BUCKET: &str = "S3_BUCKET";
    /// Endpoint, for apps and libraries that read this name (set only when `endpoint` is).
    pub const ENDPOINT: &str = "S3_ENDPOINT";
    /// `true` when `forcePathStyle` is set.
    pub const FORCE_PATH_STYLE: &str = "S3_FORCE_PATH_STYLE";
}

/// An S3-compatible bucket for uploads and other files, so no replica keeps them on its own disk.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageSpec {
    /// Name of an existing bucket (3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit). The operator does not create it. Injected as S3_BUCKET.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: String,

    /// URL of an S3-compatible service (MinIO, Ceph RGW, R2, ...), e.g. `https://s3.example.com` or `http://minio.storage:9000`. Unset uses AWS S3 for the region. Injected as AWS_ENDPOINT_URL_S3 and S3_ENDPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("objectStorage.endpoint must be a URL starting with https:// or http://, e.g. https://s3.example.com"))]
    pub endpoint: Option<String>,

    /// Region of the bucket, e.g. `eu-west-1`. Injected as AWS_REGION and AWS_DEFAULT_REGION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: Option<String>,

    /// Address the bucket in the path (`endpoint/bucket/key`) instead of the host name (`bucket.endpoint/key`), as MinIO and many self-hosted services need. Injected as S3_FORCE_PATH_STYLE=true; SDKs take it as a client option.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_path_style: bool,

    /// The Secret, in the app's namespace, holding the access key pair. Injected from the Secret, never as literal values; changing its data rolls the pods.
    pub credentials: ObjectStorageCredentials,
}

/// Where the bucket's access key pair is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageCredentials {
    /// Name of the Secret, in the StatelessApp's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,

    /// Key in the Secret holding the access key id (default AWS_ACCESS_KEY_ID).
    #[serde(default = "default_access_key_id_key")]
    #[schemars(length(min = 1, max = 253))]
    pub access_key_id_key: String,

    /// Key in the Secret holding the secret access key (default AWS_SECRET_ACCESS_KEY).
    #[serde(default = "default_secret_access_key_key")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_access_key_key: String,
}

impl ObjectStorageCredentials {
    /// Credentials in `secret_name` under the default keys.
    pub fn in_secret(secret_name: impl Into<String>) -> Self {
        Self {
            secret_name: secret_name.into(),
            access_key_id_key: default_access_key_id_key(),
            secret_access_key_key: default_secret_access_key_key(),
        }
    }

    /// The two keys the Secret must hold.
    pub fn keys(&self) -> [&str; 2] {
        [&self.access_key_id_key, &self.secret_access_key_key]
    }
}

fn default_access_key_id_key() -> String {
    DEFAULT_ACCESS_KEY_ID_KEY.to_string()
}

fn default_secret_access_key_key() -> String {
    DEFAULT_SECRET_ACCESS_KEY_KEY.to_string()
}
