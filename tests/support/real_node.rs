//! The local plane's real node (`real-0`, see `hack/node.sh`): where
//! containers really run. Tests that need it call [`require`] first, so that
//! a plane without it (`STATELESS_REAL_NODE=0`, or another cluster) fails
//! with the reason instead of passing on kwok.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client};

use super::{Operator, TestNamespace, kubeconfig_path};

/// Name of the real node.
pub const NODE: &str = "real-0";
/// Its label and its taint's key (`...=true:NoSchedule`).
pub const LABEL: &str = "stateless.dev/real-node";

/// Panic unless the real node is in the plane and Ready.
pub async fn require(client: &Client) {
    let why = match Api::<Node>::all(client.clone()).get_opt(NODE).await {
        Ok(Some(node)) => {
            let ready = node
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready {
                return;
            }
            format!("node {NODE} is not Ready (kubectl describe node {NODE})")
        }
        Ok(None) => format!(
            "there is no node {NODE}: the plane was started with STATELESS_REAL_NODE=0, or \
             KUBECONFIG points at another cluster"
        ),
        Err(e) => format!("reading node {NODE}: {e}"),
    };
    panic!(
        "this test runs real containers and needs the local plane's real node: {why}. \
         Start the plane with ./hack/cluster.sh up (README, \"The real node\")"
    );
}

/// Namespace annotations that send every pod of the namespace to the real
/// node: the API server's PodNodeSelector and PodTolerationRestriction
/// admission plugins add the node selector and the toleration, so nothing in
/// the objects themselves (the examples, the chart) changes.
pub fn namespace_annotations() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "scheduler.alpha.kubernetes.io/node-selector".to_string(),
            format!("{LABEL}=true"),
        ),
        (
            "scheduler.alpha.kubernetes.io/defaultTolerations".to_string(),
            format!(
                r#"[{{"key":"{LABEL}","operator":"Equal","value":"true","effect":"NoSchedule"}}]"#
            ),
        ),
    ])
}

/// A test namespace whose pods run on the real node.
pub async fn namespace(
    client: &Client,
    prefix: &str,
    labels: BTreeMap<String, String>,
) -> TestNamespace {
    TestNamespace::with_metadata(client, prefix, labels, namespace_annotations()).await
}

/// What a real-node test starts from: the node checked, the CRD installed, a
/// namespace whose pods go to the node, and the operator watching it with
/// the locally built Redis as its session-store image (as an installation
/// sets `--session-store-image`). Fields drop in order: the operator stops
/// before the namespace goes.
pub struct Setup {
    pub client: Client,
    pub operator: Operator,
    pub ns: TestNamespace,
    /// `hack/images.sh ref redis`.
    pub redis_image: String,
}

pub async fn setup(prefix: &str) -> Setup {
    let client = super::client().await;
    require(&client).await;
    super::ensure_crd(&client).await;
    let ns = namespace(&client, prefix, Default::default()).await;
    let redis_image = image_ref("redis");
    let settings = stateless_operator::controller::Settings {
        session_store_image: redis_image.clone(),
        // A new JWT signing key may sign 5 s after it is published (not the
        // default 2 min), so a rotation asked for in a test happens at once;
        // the files still reach the pods at the kubelet's own pace.
        key_propagation: jiff::SignedDuration::from_secs(5),
        ..Operator::settings(&ns.name, Duration::from_secs(30))
    };
    let operator = Operator::start_with_settings(&client, settings);
    Setup {
        client,
        operator,
        ns,
        redis_image,
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference of one of the project's locally built images
/// (`hack/images.sh ref NAME`), e.g. the managed Redis for `--session-store-image`.
pub fn image_ref(name: &str) -> String {
    let out = Command::new(repo_root().join("hack/images.sh"))
        .args(["ref", name])
        .output()
        .unwrap_or_else(|e| panic!("running hack/images.sh ref {name}: {e}"));
    assert!(
        out.status.success(),
        "hack/images.sh ref {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Outcome of a kubectl command.
pub struct Kubectl {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run kubectl (the cached one, see `hack/tools.sh`) against the tests' plane.
pub fn kubectl(args: &[&str]) -> Kubectl {
    let out = Command::new(super::tool("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e}"));
    Kubectl {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// kubectl that must succeed; its stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.success,
        "kubectl {} failed:\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// What a pod is doing, in one line, for failure messages.
/// Restarts of all the pod's containers.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or_default()
}

pub fn describe(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let containers: Vec<String> = status
        .container_statuses
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let state = c.state.clone().unwrap_or_default();
            let detail = state
                .waiting
                .map(|w| format!("waiting {}", w.reason.unwrap_or_default()))
                .or(state
                    .terminated
                    .map(|t| format!("terminated {}", t.reason.unwrap_or_default())))
                .unwrap_or_else(|| "running".into());
            format!(
                "{}: {detail}, ready={}, restarts={}",
                c.name, c.ready, c.restart_count
            )
        })
        .collect();
    format!(
        "{name} on {node}: {} [{}]",
        status.phase.unwrap_or_default(),
        containers.join("; ")
    )
}

/// Wait until `count` pods match `selector`, each Running on the real node
/// with every container ready; returns them.
pub async fn wait_pods_running(
    pods: &Api<Pod>,
    selector: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Pod> {
    let running = |p: &Pod| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE)
            && p.metadata.deletion_timestamp.is_none()
            && p.status.as_ref().is_some_and(|s| {
                s.phase.as_deref() == Some("Running")
                    && s.container_statuses
                        .as_ref()
                        .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready))
            })
    };
    let what = format!("{count} pods {selector} Running and Ready on {NODE}");
    let mut last = String::new();
    let result = tokio::time::timeout(timeout, async {
        loop {
            if let Ok(list) = pods.list(&ListParams::default().labels(selector)).await {
                let ready: Vec<Pod> = list.items.iter().filter(|p| running(p)).cloned().collect();
                if ready.len() >= count {
                    return ready;
                }
                last = list
                    .items
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join("\n  ");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    result.unwrap_or_else(|_| {
        panic!("timed out after {timeout:?} waiting for {what}; pods:\n  {last}")
    })
}

/// Wait until the pod `name` has terminated; its phase.
pub async fn wait_pod_finished(pods: &Api<Pod>, name: &str, timeout: Duration) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let phase = pods
            .get(name)
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            return phase;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for pod {name} to finish (phase {phase:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
