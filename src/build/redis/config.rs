//! ConfigMap `<name>-redis` holding `redis.conf`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ConfigMap;

use super::REDIS_PORT;
use crate::build::{BuildError, Context, labels, names};
use crate::crd::ManagedSessionStore;

/// Key of the configuration file in the ConfigMap.
pub const REDIS_CONF_KEY: &str = "redis.conf";
/// Where the Redis pod mounts the Secret's ACL file.
pub const ACL_DIR: &str = "/etc/redis/acl";
/// The ACL file Redis loads.
pub const ACL_FILE: &str = "/etc/redis/acl/users.acl";

pub(super) fn build(ctx: &Context<'_>, conf: &str) -> ConfigMap {
    ConfigMap {
        metadata: ctx.meta(names::redis(ctx.name), labels::redis(ctx.name)),
        data: Some(BTreeMap::from([(
            REDIS_CONF_KEY.to_string(),
            conf.to_string(),
        )])),
        ..ConfigMap::default()
    }
}

/// The `redis.conf` of the managed Redis. No password is in it: the users
/// come from the ACL file of the Secret, mounted at [`ACL_FILE`].
pub(crate) fn redis_conf(ctx: &Context<'_>, settings: &ManagedSessionStore) -> String {
    let mut conf = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        conf,
        "# Session store of StatelessApp {namespace}/{name}.\n\
         # Managed by stateless-operator: edits are overwritten.\n\
         # Users (default disabled) come from the Secret {secret}, key {acl_key}.\n\
         aclfile {ACL_FILE}\n\
         bind * -::*\n\
         port {REDIS_PORT}\n\
         protected-mode yes\n\
         dir /data\n\
         maxmemory {max_memory}\n\
         maxmemory-policy {policy}\n",
        namespace = ctx.namespace,
        name = ctx.name,
        secret = names::redis_secret(ctx.name),
        acl_key = super::ACL_KEY,
        max_memory = settings.max_memory,
        policy = settings.eviction_policy.as_str(),
    );
    if settings.persistence.enabled {
        let _ = write!(
            conf,
            "# Persistence: append-only file on the PersistentVolumeClaim {pvc}.\n\
             save \"\"\n\
             appendonly yes\n\
             appendfsync everysec\n",
            pvc = names::redis_data(ctx.name),
        );
    } else {
        conf.push_str(
            "# No persistence: sessions live in memory only and are lost on restart.\n\
             save \"\"\n\
             appendonly no\n",
        );
    }
    conf
}

/// Parse a Redis memory size (`64mb`, `1gb`, `500k`, `1048576`) into bytes.
/// Units as in redis.conf, case-insensitive: b, k = 1000, kb = 1024, m,
/// mb, g, gb.
pub fn parse_memory(value: &str) -> Result<u64, &'static str> {
    let value = value.trim().to_ascii_lowercase();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() {
        return Err("it must start with a number");
    }
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return Err("the unit must be one of b, k, kb, m, mb, g, gb"),
    };
    let number: u64 = digits.parse().map_err(|_| "the number is too large")?;
    if number == 0 {
        return Err("it must be greater than zero (0 would mean no limit)");
    }
    number
        .checked_mul(multiplier)
        .ok_or("the size is too large")
}

/// `parse_memory` with the app's identity in the error.
pub(super) fn max_memory_bytes(
    ctx: &Context<'_>,
    settings: &ManagedSessionStore,
) -> Result<u64, BuildError> {
    parse_memory(&settings.max_memory).map_err(|reason| BuildError::InvalidMaxMemory {
        namespace: ctx.namespace.to_string(),
        name: ctx.name.to_string(),
        value: settings.max_memory.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::test_support::*;
    use crate::build::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn basic_spec_whole_object() {
        let redis = children(&basic(), &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed by default");
        assert_eq!(
            to_json(&redis.config),
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "shop-redis",
                    "namespace": "prod",
                    "labels": redis_labels(),
                    "ownerReferences": owner()
                },
                "data": {
                    "redis.conf": "# Session store of StatelessApp prod/shop.\n\
                                   # Managed by stateless-operator: edits are overwritten.\n\
                                   # Users (default disabled) come from the Secret shop-redis, key users.acl.\n\
                                   aclfile /etc/redis/acl/users.acl\n\
                                   bind * -::*\n\
                                   port 6379\n\
                                   protected-mode yes\n\
                                   dir /data\n\
                                   maxmemory 64mb\n\
                                   maxmemory-policy volatile-lru\n\
                                   # No persistence: sessions live in memory only and are lost on restart.\n\
                                   save \"\"\n\
                                   appendonly no\n"
                }
            })
        );
    }

    #[test]
    fn persistence_and_settings_end_up_in_redis_conf() {
        let app = app(json!({
            "image": "x",
            "sessionStore": {"managed": {
                "maxMemory": "256mb",
                "evictionPolicy": "allkeys-lru",
                "persistence": {"enabled": true}
            }}
        }));
        let redis = children(&app, &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed");
        let data = redis.config.data.expect("data");
        let conf = data.get(REDIS_CONF_KEY).expect("redis.conf");
        assert!(conf.contains("\nmaxmemory 256mb\n"), "{conf}");
        assert!(conf.contains("\nmaxmemory-policy allkeys-lru\n"), "{conf}");
        assert!(
            conf.ends_with(
                "# Persistence: append-only file on the PersistentVolumeClaim shop-redis-data.\n\
             save \"\"\n\
             appendonly yes\n\
             appendfsync everysec\n"
            ),
            "{conf}"
        );
        assert!(!conf.contains("appendonly no"), "{conf}");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("64mb"), Ok(64 << 20));
        assert_eq!(parse_memory("64MB"), Ok(64 << 20));
        assert_eq!(parse_memory("1gb"), Ok(1 << 30));
        assert_eq!(parse_memory("500k"), Ok(500_000));
        assert_eq!(parse_memory("2kb"), Ok(2048));
        assert_eq!(parse_memory("3m"), Ok(3_000_000));
        assert_eq!(parse_memory("1g"), Ok(1_000_000_000));
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory("12b"), Ok(12));
        assert!(parse_memory("").is_err());
        assert!(parse_memory("mb").is_err());
        assert!(parse_memory("0").is_err());
        assert!(parse_memory("64 tb").is_err());
        assert!(parse_memory("-1mb").is_err());
        assert!(parse_memory("99999999999999999999gb").is_err());
        assert!(parse_memory("18446744073709551615gb").is_err());
    }
}
