//! The operator across API server restarts, on the local plane's real API
//! server: `hack/cluster.sh restart kube-apiserver` stops it (SIGTERM) and
//! starts it with the same command line under the running operator binary.
//!
//! The operator runs with a resync of one hour, so only its watches can
//! bring a change to the Deployment within the bound used here (30 s).
//! Every test binary shares the plane's API server, and cargo runs test
//! binaries one after another; all cases that restart it live in this one
//! test and run in order, and the plane is left healthy (every node Ready).
//! The times measured (API server ready → change applied, SIGTERM → exit,
//! also in the middle of an outage) are printed.

mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use stateless_operator::crd::{CRD_NAME, StatelessApp};

use support::operator::{OperatorBinary, free_port};
use support::{
    TestNamespace, WebhookConfiguration, apply_objects, cleanup_in_drop, client, ensure_crd,
    kubeconfig_path, load_yaml, suffix, wait_ready, wait_until,
};

/// The functional bound: far below the resync, far above what a watch needs.
const WITHIN: Duration = Duration::from_secs(30);
/// Longer than the watches' backoff cap (5 s) and kube-runtime's default (30 s).
const LONG_OUTAGE_SECONDS: &str = "40";
/// Long enough that the operator's SIGTERM (about 2 s in) lands well inside it.
const OUTAGE_AT_STOP_SECONDS: &str = "15";
const IMAGE: &str = "ghcr.io/stateless-dev/session-demo";
const LEASE: &str = "stateless-operator-restart";
const WEBHOOK_SECRET: &str = "restart-webhook-tls";

/// A line for the person running the suite. Written to stderr directly:
/// libtest captures `println!` of passing tests, and these times are the
/// point of the test.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "restart: {line}");
}

/// The run dir of the plane, found like its kubeconfig: `STATELESS_RUN_DIR`
/// or the default. `restart` must act on the plane the tests talk to.
fn run_dir() -> PathBuf {
    let dir = support::run_dir();
    let ours = dir.join("kubeconfig").canonicalize().ok();
    assert!(
        ours.is_some() && ours == kubeconfig_path().canonicalize().ok(),
        "the restart test restarts the API server of the plane in {} and must talk to that plane: \
         set STATELESS_RUN_DIR to the plane's run dir and KUBECONFIG to its kubeconfig \
         (KUBECONFIG=\"$(hack/cluster.sh kubeconfig)\"), or run ./hack/test.sh",
        dir.display()
    );
    dir
}

/// `hack/cluster.sh ARGS` on the tests' plane, not started yet.
fn cluster_command(args: &[&str]) -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/cluster.sh");
    let mut command = Command::new(script);
    command
        .args(args)
        .env("STATELESS_RUN_DIR", run_dir())
        .stdin(Stdio::null());
    command
}

/// The stdout of a finished `hack/cluster.sh`; panics when it failed.
fn cluster_stdout(args: &[&str], out: std::io::Result<std::process::Output>) -> String {
    let out = out.unwrap_or_else(|e| panic!("running hack/cluster.sh {args:?}: {e}"));
    assert!(
        out.status.success(),
        "hack/cluster.sh {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `hack/cluster.sh ARGS` on the tests' plane; its stdout.
fn cluster(args: &[&str]) -> String {
    cluster_stdout(args, cluster_command(args).output())
}

/// `hack/cluster.sh ARGS` running in the background; [`Background::finish`] waits for it.
struct Background<'a> {
    args: &'a [&'a str],
    child: std::process::Child,
}

fn cluster_in_background<'a>(args: &'a [&'a str]) -> Background<'a> {
    let child = cluster_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running hack/cluster.sh {args:?}: {e}"));
    Background { args, child }
}

impl Background<'_> {
    /// Wait for it to end; its stdout.
    async fn finish(self) -> String {
        let child = self.child;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("waiting for hack/cluster.sh");
        cluster_stdout(self.args, out)
    }
}

/// A ValidatingWebhookConfiguration whose caBundle the operator keeps; it
/// selects no namespace, so no request ever reaches it. Deleted on drop.
async fn webhook_configuration(client: &Client, url: &str) -> WebhookConfiguration {
    let name = format!("stateless-restart-{}", suffix());
    WebhookConfiguration::create(
        client,
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "validate.stateless.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "clientConfig": {"url": url},
                "namespaceSelector": {"matchLabels": {"stateless.dev/restart-test": name}},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"],
                           "operations": ["CREATE"], "scope": "Namespaced"}]
            }]
        }),
    )
    .await
}

/// Puts the StatelessApp CRD back (as the tests install it) when dropped,
/// whatever a case did to it.
struct CrdRestored;

impl Drop for CrdRestored {
    fn drop(&mut self) {
        cleanup_in_drop(|client| async move { ensure_crd(&client).await });
    }
}

/// Everything the cases share.
struct Fixture {
    client: Client,
    ns: TestNamespace,
    apps: Api<StatelessApp>,
    deployments: Api<Deployment>,
    operator: OperatorBinary,
    webhook: WebhookConfiguration,
}

impl Fixture {
    /// Patch the app's image (retrying while the API server is still coming
    /// back) and wait until the Deployment runs it: the time from the call.
    async fn change_reaches_deployment(&mut self, tag: &str) -> Duration {
        let start = Instant::now();
        let image = format!("{IMAGE}:{tag}");
        let patch = json!({"spec": {"image": image}});
        let deadline = start + WITHIN;
        loop {
            match self
                .apps
                .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    report(&format!("patch refused ({e}); retrying"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the API server refused the spec change for {WITHIN:?}: {e}"),
            }
        }
        loop {
            let current = self
                .deployments
                .get_opt("web")
                .await
                .ok()
                .flatten()
                .and_then(|d| d.spec)
                .and_then(|s| s.template.spec)
                .and_then(|p| p.containers.first().and_then(|c| c.image.clone()));
            if current.as_deref() == Some(image.as_str()) {
                return start.elapsed();
            }
            if Instant::now() >= deadline {
                panic!(
                    "spec.image {image} had not reached Deployment web {WITHIN:?} after the change \
                     (it has {current:?}); the resync is an hour away, so a watch missed it. \
                     Operator log:\n{}",
                    self.operator.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The operator holds the Lease, renewed after `since`.
    async fn wait_leading_since(&self, since: jiff::Timestamp) -> Duration {
        let start = Instant::now();
        let leases: Api<Lease> = self.ns.api();
        let identity = self.operator.identity().to_string();
        wait_until(
            WITHIN,
            &format!("{identity} holding Lease {LEASE}, renewed after {since}"),
            || async {
                leases
                    .get_opt(LEASE)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|l| l.spec)
                    .is_some_and(|s| {
                        s.holder_identity.as_deref() == Some(identity.as_str())
                            && s.renew_time.is_some_and(|t| t.0 > since)
                    })
            },
        )
        .await;
        start.elapsed()
    }

    fn secrets(&self) -> Api<Secret> {
        self.ns.api()
    }

    async fn ca_bundle(&self) -> Option<Vec<u8>> {
        Api::<ValidatingWebhookConfiguration>::all(self.client.clone())
            .get_opt(&self.webhook.name)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.webhooks)
            .and_then(|w| w.into_iter().next())
            .and_then(|w| w.client_config.ca_bundle)
            .map(|b| b.0)
    }

    async fn secret_ca(&self) -> Option<(String, Vec<u8>)> {
        let secret = self
            .secrets()
            .get_opt(WEBHOOK_SECRET)
            .await
            .ok()
            .flatten()?;
        let uid = secret.uid()?;
        let ca = secret.data?.get("ca.crt")?.0.clone();
        Some((uid, ca))
    }

    /// The caBundle is this Secret's CA.
    async fn ca_bundle_matches_secret(&self, uid: Option<&str>) -> bool {
        let Some((secret_uid, ca)) = self.secret_ca().await else {
            return false;
        };
        uid.is_none_or(|u| u != secret_uid) && self.ca_bundle().await == Some(ca)
    }

    /// The webhook's certificate sync reacts to both of its watches: a
    /// removed caBundle is put back, a deleted Secret is made again (new CA)
    /// and its CA goes into the caBundle. The times taken.
    async fn webhook_reacts(&self) -> (Duration, Duration) {
        let configs = Api::<ValidatingWebhookConfiguration>::all(self.client.clone());
        let remove: json_patch::Patch = serde_json::from_value(json!([
            {"op": "remove", "path": "/webhooks/0/clientConfig/caBundle"}
        ]))
        .expect("patch");
        let start = Instant::now();
        configs
            .patch(
                &self.webhook.name,
                &PatchParams::default(),
                &Patch::Json::<()>(remove),
            )
            .await
            .unwrap_or_else(|e| panic!("removing the caBundle: {e}"));
        wait_until(WITHIN, "the caBundle put back", || {
            self.ca_bundle_matches_secret(None)
        })
        .await;
        let restored = start.elapsed();

        let (old_uid, _) = self.secret_ca().await.expect("the webhook Secret");
        let start = Instant::now();
        self.secrets()
            .delete(WEBHOOK_SECRET, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting the webhook Secret: {e}"));
        wait_until(
            WITHIN,
            "a new webhook Secret, its CA in the caBundle",
            || self.ca_bundle_matches_secret(Some(&old_uid)),
        )
        .await;
        (restored, start.elapsed())
    }

    /// One case: after the API server is ready (`since` it was), a spec
    /// change reaches the Deployment, the Lease is held again, the webhook
    /// sync still reacts, and the watches started over.
    async fn after_outage(&mut self, case: &str, tag: &str, restarts_before: f64) {
        let since = jiff::Timestamp::now();
        let applied = self.change_reaches_deployment(tag).await;
        report(&format!(
            "{case}: API server ready -> change applied to the Deployment in {:.2}s",
            applied.as_secs_f64()
        ));
        let leading = self.wait_leading_since(since).await;
        report(&format!(
            "{case}: Lease {LEASE} held and renewed by the operator {:.2}s later",
            leading.as_secs_f64()
        ));
        let (restored, renewed) = self.webhook_reacts().await;
        report(&format!(
            "{case}: webhook caBundle put back in {:.2}s, deleted Secret replaced and its CA in the caBundle in {:.2}s",
            restored.as_secs_f64(),
            renewed.as_secs_f64()
        ));
        let restarts = self.operator.restarts("StatelessApp").await;
        assert!(
            restarts > restarts_before,
            "{case}: stateless_watch_restarts_total{{kind=\"StatelessApp\"}} stayed at {restarts} \
             across the outage (before: {restarts_before})"
        );
        assert!(
            self.operator.running(),
            "{case}: the operator exited:\n{}",
            self.operator.logs()
        );
    }
}

fn app(name: &str) -> serde_json::Value {
    let mut app = load_yaml("examples/basic.yaml").remove(0);
    app["metadata"]["name"] = json!(name);
    app
}

async fn setup() -> Fixture {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "restart").await;
    let webhook_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let webhook = webhook_configuration(
        &client,
        &format!("https://127.0.0.1:{}/validate", webhook_addr.port()),
    )
    .await;
    apply_objects(&client, &ns.name, &[app("web")]).await;
    let args: Vec<String> = [
        format!("--namespace={}", ns.name),
        "--resync-seconds=3600".to_string(),
        "--leader-elect".to_string(),
        format!("--leader-election-namespace={}", ns.name),
        format!("--leader-election-lease={LEASE}"),
        format!("--webhook-addr={webhook_addr}"),
        format!("--webhook-config-name={}", webhook.name),
        format!("--webhook-secret={WEBHOOK_SECRET}"),
        format!("--operator-namespace={}", ns.name),
        "--webhook-extra-san=127.0.0.1".to_string(),
        "--log-level=info,stateless_operator=debug".to_string(),
    ]
    .into();
    let mut operator = OperatorBinary::spawn(&args, &kubeconfig_path(), &ns.name);
    operator.wait_readyz(200, Duration::from_secs(60)).await;
    let apps: Api<StatelessApp> = ns.api();
    wait_ready(&apps, "web", Duration::from_secs(90)).await;
    let deployments = ns.api();
    let mut fixture = Fixture {
        client,
        ns,
        apps,
        deployments,
        operator,
        webhook,
    };
    let since = jiff::Timestamp::now();
    fixture.wait_leading_since(since).await;
    wait_until(WITHIN, "the webhook caBundle set", || {
        fixture.ca_bundle_matches_secret(None)
    })
    .await;
    // The idle converged state, before any outage: watches work at all.
    let applied = fixture.change_reaches_deployment("before").await;
    report(&format!(
        "no outage: change applied to the Deployment in {:.2}s",
        applied.as_secs_f64()
    ));
    fixture
}

/// The API server stops (SIGTERM) and starts again with the same command line.
async fn restart_case(f: &mut Fixture) {
    let before = f.operator.restarts("StatelessApp").await;
    report(&cluster(&["restart", "kube-apiserver"]));
    f.after_outage("restart", "after-restart", before).await;
}

/// The API server closes the StatelessApp watches (a CRD spec update tears
/// its storage down) and the operator's watch must work again. Two resumes
/// are correct and both happen: usually the writes just before leave the
/// operator's resourceVersion behind the new watch cache, so the resume gets
/// 410 Gone and lists again; but the old storage lives on for a moment after
/// the update, and a bookmark it sends then can carry a resourceVersion at or
/// past the new cache's first list, which the new cache resumes from without
/// a list. The change made after the close reaching the Deployment proves
/// either way (the resync is an hour, so only the watch can deliver it).
async fn closed_watch_case(f: &mut Fixture) {
    let _restore = CrdRestored;
    let crds: Api<CustomResourceDefinition> = Api::all(f.client.clone());
    let log = run_dir().join("logs/kube-apiserver.log");
    let closes = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Terminating all watchers from cacher statelessapps.stateless.dev")
            .count()
    };
    let (closes_before, restarts_before, errors_before) = (
        closes(),
        f.operator.restarts("StatelessApp").await,
        f.operator
            .watch_metric("stateless_watch_errors_total", "controller", "StatelessApp")
            .await,
    );
    let configs: Api<ConfigMap> = f.ns.api();
    for i in 0..3 {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("rv-bump-{i}")),
                ..Default::default()
            },
            ..Default::default()
        };
        configs
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_or_else(|e| panic!("creating ConfigMap rv-bump-{i}: {e}"));
    }
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/spec/names/categories", "value": ["stateless-restart-test"]}
    ]))
    .expect("patch");
    crds.patch(CRD_NAME, &PatchParams::default(), &Patch::Json::<()>(add))
        .await
        .unwrap_or_else(|e| panic!("changing the CRD's categories: {e}"));
    wait_until(
        WITHIN,
        "the API server closing the StatelessApp watches (its log)",
        || async { closes() > closes_before },
    )
    .await;
    let applied = f.change_reaches_deployment("after-close").await;
    let (restarts, errors) = (
        f.operator.restarts("StatelessApp").await,
        f.operator
            .watch_metric("stateless_watch_errors_total", "controller", "StatelessApp")
            .await,
    );
    let resume = if restarts > restarts_before {
        // A list is only ever started again after a refused resume.
        assert!(
            errors > errors_before,
            "the StatelessApp watch listed again without a refused resume (errors stayed at {errors}):\n{}",
            f.operator.logs()
        );
        "the resume refused (410 Gone), listed again"
    } else {
        "resumed from the operator's resourceVersion without a list"
    };
    report(&format!(
        "watch closed by the API server: {resume}; change applied to the Deployment in {:.2}s",
        applied.as_secs_f64()
    ));
    let remove: json_patch::Patch = serde_json::from_value(json!([
        {"op": "remove", "path": "/spec/names/categories"}
    ]))
    .expect("patch");
    crds.patch(
        CRD_NAME,
        &PatchParams::default(),
        &Patch::Json::<()>(remove),
    )
    .await
    .unwrap_or_else(|e| panic!("restoring the CRD's categories: {e}"));
}

/// The API server away for longer than any watch backoff cap.
async fn long_outage_case(f: &mut Fixture) {
    let before = f.operator.restarts("StatelessApp").await;
    report(&cluster(&[
        "restart",
        "kube-apiserver",
        "--down",
        LONG_OUTAGE_SECONDS,
    ]));
    f.after_outage(
        &format!("down {LONG_OUTAGE_SECONDS}s"),
        "after-long-outage",
        before,
    )
    .await;
}

/// SIGTERM while the API server is away under the running leader (its
/// watches failing and backing off, its webhook serving, its Lease held):
/// it exits within the grace period all the same, without the Lease
/// release it cannot send.
async fn sigterm_during_outage_case(client: &Client, operator: OperatorBinary) {
    let restart = cluster_in_background(&[
        "restart",
        "kube-apiserver",
        "--down",
        OUTAGE_AT_STOP_SECONDS,
    ]);
    wait_until(WITHIN, "the API server unreachable", || async {
        client.apiserver_version().await.is_err()
    })
    .await;
    // Into the outage: the watches have seen their connections fail.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = operator.stop().await;
    report(&format!(
        "SIGTERM to the leader 2 s into an outage: it exited in {:.2}s (3 s of it the webhook's drain delay)",
        took.as_secs_f64()
    ));
    report(&restart.finish().await);
}

/// Before its first list of StatelessApps the operator is not ready, and
/// SIGTERM ends it at once: with the API server unreachable at start.
async fn unreachable_at_start_case(namespace: &str) {
    let dir = std::env::temp_dir().join(format!("restart-unreachable-{}", suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut kubeconfig =
        kube::config::Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
    let closed = format!("https://127.0.0.1:{}", free_port());
    for cluster in &mut kubeconfig.clusters {
        if let Some(c) = cluster.cluster.as_mut() {
            c.server = Some(closed.clone());
        }
    }
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        serde_json::to_vec(&kubeconfig).expect("kubeconfig json"),
    )
    .expect("writing the kubeconfig");
    let webhook_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let args: Vec<String> = [
        format!("--namespace={namespace}"),
        format!("--webhook-addr={webhook_addr}"),
        format!("--operator-namespace={namespace}"),
    ]
    .into();
    let mut operator = OperatorBinary::spawn(&args, &path, namespace);
    operator.wait_readyz(503, Duration::from_secs(30)).await;
    wait_until(WITHIN, "the failing watch logged", || async {
        operator.logs().contains("watch failed")
    })
    .await;
    assert_eq!(
        operator.get("/healthz").await.0,
        200,
        "alive while not ready"
    );
    let took = operator.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    report(&format!(
        "API server unreachable at start: not ready, SIGTERM took {:.2}s (3 s of it the webhook's drain delay)",
        took.as_secs_f64()
    ));
}

/// The same with the CRD missing: an error saying how to install it, not
/// ready, SIGTERM at once; a second process becomes ready once it is installed.
async fn missing_crd_case(client: &Client, namespace: &str) {
    let _restore = CrdRestored;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete(CRD_NAME, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting the CRD: {e}"));
    let apps: Api<StatelessApp> = Api::namespaced(client.clone(), namespace);
    wait_until(WITHIN, "the StatelessApp API gone", || async {
        matches!(apps.list(&Default::default()).await, Err(kube::Error::Api(s)) if s.code == 404)
    })
    .await;
    let args: Vec<String> = [
        format!("--namespace={namespace}"),
        "--webhook-addr=off".to_string(),
    ]
    .into();
    let mut first = OperatorBinary::spawn(&args, &kubeconfig_path(), namespace);
    let mut second = OperatorBinary::spawn(&args, &kubeconfig_path(), namespace);
    first.wait_readyz(503, Duration::from_secs(30)).await;
    let said = |logs: String| {
        logs.lines().any(|l| {
            l.contains("ERROR")
                && l.contains("statelessapps.stateless.dev is not installed")
                && l.contains("stateless-operator crd")
        })
    };
    wait_until(WITHIN, "an ERROR line naming the missing CRD", || async {
        said(first.logs())
    })
    .await;
    let took = first.stop().await;
    report(&format!(
        "CRD missing: error logged, not ready, SIGTERM took {:.2}s",
        took.as_secs_f64()
    ));
    second.wait_readyz(503, Duration::from_secs(30)).await;
    ensure_crd(client).await;
    let start = Instant::now();
    second.wait_readyz(200, WITHIN).await;
    report(&format!(
        "CRD installed later: ready {:.2}s after it was Established",
        start.elapsed().as_secs_f64()
    ));
    second.stop().await;
}

/// Leave the plane as found: every node Ready and untainted by the outage.
async fn nodes_ready(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_until(
        Duration::from_secs(120),
        "every node Ready again",
        || async {
            nodes.list(&Default::default()).await.is_ok_and(|list| {
                list.items.iter().all(|n| {
                    let ready = n
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    let tainted =
                        n.spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|ts| {
                                ts.iter()
                                    .any(|t| t.key.starts_with("node.kubernetes.io/unreachable"))
                            });
                    ready && !tainted
                })
            })
        },
    )
    .await;
}

#[tokio::test]
async fn changes_reach_the_deployment_across_api_server_restarts() {
    let mut f = setup().await;
    restart_case(&mut f).await;
    closed_watch_case(&mut f).await;
    long_outage_case(&mut f).await;
    let Fixture {
        client,
        ns,
        operator,
        ..
    } = f;
    sigterm_during_outage_case(&client, operator).await;
    nodes_ready(&client).await;
    unreachable_at_start_case(&ns.name).await;
    missing_crd_case(&client, &ns.name).await;
    controllers_working(&client).await;
}

/// Leave the plane as found: the controller-manager's watches, which back
/// off for up to 30 s while the API server is away, work again — a new
/// namespace gets its default ServiceAccount (the tests after this one
/// wait for exactly that).
async fn controllers_working(client: &Client) {
    let start = Instant::now();
    let probe = TestNamespace::new(client, "restart-after").await;
    report(&format!(
        "after the outages: a new namespace got its default ServiceAccount in {:.2}s",
        start.elapsed().as_secs_f64()
    ));
    drop(probe);
}
