//! Service `<name>-redis`.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{REDIS_PORT, REDIS_PORT_NAME};
use crate::build::{Context, labels, names};

pub(super) fn build(ctx: &Context<'_>) -> Service {
    Service {
        metadata: ctx.meta(names::redis(ctx.name), labels::redis(ctx.name)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            session_affinity: Some("None".into()),
            selector: Some(labels::redis_selector(ctx.name)),
            ports: Some(vec![ServicePort {
                name: Some(REDIS_PORT_NAME.into()),
                port: REDIS_PORT,
                target_port: Some(IntOrString::String(REDIS_PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::build::test_support::*;
    use crate::build::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn basic_spec_whole_object() {
        let redis = children(&basic(), &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed");
        assert_eq!(
            to_json(&redis.service),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "shop-redis",
                    "namespace": "prod",
                    "labels": redis_labels(),
                    "ownerReferences": owner()
                },
                "spec": {
                    "type": "ClusterIP",
                    "sessionAffinity": "None",
                    "selector": redis_selector(),
                    "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}]
                }
            })
        );
    }
}
