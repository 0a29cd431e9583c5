//! The operator-managed Redis session store, built only when
//! `sessionStore.type` is managed: ConfigMap, Deployment, Service and
//! NetworkPolicy `<name>-redis`, PersistentVolumeClaim `<name>-redis-data`
//! with persistence, and the Secret `<name>-redis` (created once by the
//! controller through [`redis_secret`], never rebuilt, so the password is
//! stable).
//!
//! Redis listens on [`REDIS_PORT`], knows one enabled user, the app's
//! ([`REDIS_USER`], from the ACL file in the Secret; no password on any
//! command line), is reachable only from the app's pods and reaches nothing
//! itself (NetworkPolicy), and runs with the restricted Pod Security
//! Standard as the image's `redis` user.

mod config;
mod deployment;
mod network_policy;
mod pvc;
mod secret;
mod service;

pub use config::{REDIS_CONF_KEY, parse_memory};
pub use secret::{
    ACL_KEY, PASSWORD_KEY, REDIS_USER, URL_KEY, acl_file, derived_data, generate_password,
    redis_secret, redis_secret_staged, redis_url,
};

use super::{BuildError, BuildInputs, Context, ManagedRedis};

/// Port Redis listens on.
pub const REDIS_PORT: i32 = 6379;
/// Name of the Redis container port.
pub const REDIS_PORT_NAME: &str = "redis";
/// uid of the `redis` user in the official Redis alpine image.
pub const REDIS_UID: i64 = 999;
/// gid of the `redis` group in the official Redis alpine image.
pub const REDIS_GID: i64 = 1000;

/// Build the managed Redis, or `None` when the session store is not managed.
pub(crate) fn build(
    ctx: &Context<'_>,
    inputs: &BuildInputs,
) -> Result<Option<ManagedRedis>, BuildError> {
    let Some(settings) = ctx.app.spec.managed_session_store() else {
        return Ok(None);
    };
    let conf = config::redis_conf(ctx, &settings);
    Ok(Some(ManagedRedis {
        config: config::build(ctx, &conf),
        deployment: deployment::build(ctx, &settings, inputs, &conf)?,
        service: service::build(ctx),
        network_policy: network_policy::build(ctx),
        pvc: pvc::build(ctx, &settings),
    }))
}
