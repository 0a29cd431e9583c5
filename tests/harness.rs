//! Proof that the local control plane is real: the built-in controllers,
//! the scheduler and kwok's fake nodes do their jobs end to end.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};

use support::{TestNamespace, client, wait_until};

#[tokio::test]
async fn deployment_runs_on_kwok_nodes_and_is_garbage_collected() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "harness").await;
    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some("registry.example/web:1".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployments = ns.api::<Deployment>();
    let pods = ns.api::<Pod>();
    let replica_sets = ns.api::<ReplicaSet>();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");

    wait_until(
        Duration::from_secs(60),
        "Deployment web Available with 2 ready replicas",
        || async {
            let Ok(d) = deployments.get("web").await else {
                return false;
            };
            let status = d.status.unwrap_or_default();
            let available = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            available && status.ready_replicas == Some(2)
        },
    )
    .await;

    let running = pods.list(&ListParams::default()).await.expect("list pods");
    assert_eq!(running.items.len(), 2, "exactly the 2 replicas run");
    for pod in &running.items {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        assert!(
            node.starts_with("kwok-node-"),
            "pod scheduled onto a kwok node, got {node:?}"
        );
        let status = pod.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(
            status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            "pod is Ready"
        );
    }
    assert_eq!(
        replica_sets
            .list(&ListParams::default())
            .await
            .expect("list rs")
            .items
            .len(),
        1
    );

    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete Deployment");
    wait_until(
        Duration::from_secs(60),
        "ReplicaSet and Pods garbage-collected",
        || async {
            let rs = replica_sets
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len())
                .unwrap_or(1);
            let pods = pods
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len())
                .unwrap_or(1);
            rs == 0 && pods == 0
        },
    )
    .await;
}
