//! The app Service `<name>`.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{BuildError, Context, labels, names};
use crate::crd::Protocol;

/// Build the app Service: the configured port forwards to the first
/// container port, by name, so the container port number can change freely.
pub(crate) fn build(ctx: &Context<'_>) -> Result<Service, BuildError> {
    let spec = &ctx.app.spec;
    let target = ctx.primary_port()?;
    Ok(Service {
        metadata: ctx.meta(names::app(ctx.name), labels::app(ctx.name)),
        spec: Some(ServiceSpec {
            type_: Some(spec.service_type().as_str().into()),
            // Explicitly None: any pod can serve any request, which is the
            // point of keeping sessions in the session store.
            session_affinity: Some("None".into()),
            selector: Some(labels::app_selector(ctx.name)),
            ports: Some(vec![ServicePort {
                name: Some(target.name.clone()),
                port: spec.service_port(),
                target_port: Some(IntOrString::String(target.name.clone())),
                // Explicit: `protocol` is part of the list-map key under server-side apply.
                protocol: Some(target.protocol.unwrap_or(Protocol::Tcp).as_str().into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn basic_spec_whole_object() {
        let got = to_json(
            &children(&basic(), &BuildInputs::default())
                .expect("builds")
                .service,
        );
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "shop",
                    "namespace": "prod",
                    "labels": app_labels(),
                    "ownerReferences": owner()
                },
                "spec": {
                    "type": "ClusterIP",
                    "sessionAffinity": "None",
                    "selector": app_selector(),
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
                }
            })
        );
    }

    #[test]
    fn type_and_port_from_the_spec_target_the_first_port() {
        let app = app(json!({
            "image": "x",
            "ports": [{"name": "web", "containerPort": 9898}, {"name": "metrics", "containerPort": 9797}],
            "service": {"type": "LoadBalancer", "port": 443}
        }));
        let got = to_json(
            &children(&app, &BuildInputs::default())
                .expect("builds")
                .service,
        );
        assert_eq!(
            got["spec"],
            json!({
                "type": "LoadBalancer",
                "sessionAffinity": "None",
                "selector": app_selector(),
                "ports": [{"name": "web", "port": 443, "targetPort": "web", "protocol": "TCP"}]
            })
        );
    }
}
