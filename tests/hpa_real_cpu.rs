//! The HorizontalPodAutoscaler the operator creates scales the app on real
//! CPU: metrics-server (on the local plane's real node) reads the kubelet's
//! resource metrics, a bounded load makes the app's pods busy, the HPA scales
//! the Deployment up from `min`, and back down once the load stops. The
//! operator never writes `replicas`: its field manager owns no
//! `spec.replicas` of the Deployment, and the audit log has the HPA
//! controller, never the operator, writing the scale subresource.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use stateless_operator::crd::StatelessApp;

use support::real_node;
use support::{apply_objects, wait_ready, wait_until};

const APP: &str = "cpu-demo";
const WAIT: Duration = Duration::from_secs(180);
/// The load's bounds.
const LOAD_SECONDS: u64 = 75;
const LOAD_PODS: i32 = 2;

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

#[tokio::test]
async fn hpa_scales_the_app_on_real_cpu_and_back() {
    let setup = real_node::setup("hpa").await;
    let (client, ns) = (setup.client.clone(), &setup.ns);
    let demo = real_node::image_ref("session-demo");
    // A small CPU request, so that a modest load is a large utilization; a
    // short scale-down window, so that the test sees the way back too.
    let app = json!({
        "apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
        "metadata": {"name": APP},
        "spec": {
            "image": demo,
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            "replicas": {"min": 2, "max": 4},
            "autoscaling": {
                "targetCPUUtilizationPercentage": 50,
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0,
                                "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": 20,
                                  "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}]},
                },
            },
        },
    });
    apply_objects(&client, &ns.name, &[app]).await;
    let apps: Api<StatelessApp> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns.name);
    wait_ready(&apps, APP, WAIT).await;
    let selector = format!("app.kubernetes.io/instance={APP},app.kubernetes.io/component=app");
    real_node::wait_pods_running(&pods, &selector, 2, WAIT).await;

    // The HPA reads real figures before any load: its CPU metric has a value.
    wait_until(
        WAIT,
        "the HPA reading the pods' CPU from metrics-server",
        || async {
            hpas.get(APP)
                .await
                .ok()
                .and_then(|h| h.status)
                .is_some_and(|s| {
                    s.current_metrics.unwrap_or_default().iter().any(|m| {
                        m.resource.as_ref().is_some_and(|r| {
                            r.name == "cpu" && r.current.average_utilization.is_some()
                        })
                    })
                })
        },
    )
    .await;
    let idle = deployments.get(APP).await.expect("the app Deployment");
    assert_eq!(replicas(&idle), 2, "idle at min");

    // Bounded load: requests that each burn a little CPU in the app.
    // 8 clients, each a 25 ms page every ~0.5 s: about 0.4 of a core in all,
    // against 2 x 20m requested, bounded in time and count.
    let url = format!("http://{APP}.{}.svc/session?work_ms=25", ns.name);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "cpu-load"},
        "spec": {
            "parallelism": LOAD_PODS, "completions": LOAD_PODS, "backoffLimit": 0,
            "activeDeadlineSeconds": LOAD_SECONDS + 120,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "load", "image": demo, "imagePullPolicy": "Never",
                "command": ["session-demo", "load", "--url", url, "--clients", "4",
                            "--duration", LOAD_SECONDS.to_string(), "--max-requests", "2000",
                            "--interval-ms", "500"],
            }]}},
        },
    }))
    .expect("load job");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns.name);
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create the load Job");
    let load_started = Instant::now();
    wait_until(WAIT, "the HPA scaling the app above min", || async {
        deployments
            .get(APP)
            .await
            .ok()
            .is_some_and(|d| replicas(&d) > 2)
    })
    .await;
    let scale_up = load_started.elapsed();

    wait_until(WAIT, "the load Job finished", || async {
        jobs.get("cpu-load")
            .await
            .ok()
            .and_then(|j| j.status)
            .and_then(|s| s.succeeded)
            == Some(LOAD_PODS)
    })
    .await;
    let load_stopped = Instant::now();
    let peak = replicas(&deployments.get(APP).await.expect("the app Deployment"));
    wait_until(
        Duration::from_secs(300),
        "the HPA scaling back to min",
        || async {
            deployments
                .get(APP)
                .await
                .ok()
                .is_some_and(|d| replicas(&d) == 2)
        },
    )
    .await;
    let scale_down = load_stopped.elapsed();
    println!(
        "HPA on real CPU: 2 -> {peak} replicas {:.0} s after the load started; back to 2 {:.0} s after it stopped",
        scale_up.as_secs_f64(),
        scale_down.as_secs_f64()
    );

    // The operator never owned or wrote replicas.
    let deployment = deployments.get(APP).await.expect("the app Deployment");
    for entry in deployment.metadata.managed_fields.unwrap_or_default() {
        if entry.manager.as_deref() == Some(stateless_operator::build::FIELD_MANAGER) {
            let fields = entry.fields_v1.map(|f| f.0).unwrap_or_default();
            assert!(
                fields["f:spec"].get("f:replicas").is_none(),
                "the operator's field manager owns spec.replicas: {fields}"
            );
        }
    }
    let scale_uri = format!("/deployments/{APP}/scale");
    let operator_scale_writes: Vec<String> = support::audited_writes(&ns.name)
        .into_iter()
        .filter(|w| w.contains(&scale_uri))
        .collect();
    assert!(
        operator_scale_writes.is_empty(),
        "the operator wrote the scale subresource: {operator_scale_writes:?}"
    );
    let hpa_scale_writes = support::audited_writes_by(
        &ns.name,
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    )
    .into_iter()
    .filter(|w| w.contains(&scale_uri))
    .count();
    assert!(
        hpa_scale_writes >= 2,
        "the HPA controller scaled the Deployment up and down ({hpa_scale_writes} scale writes)"
    );
}
