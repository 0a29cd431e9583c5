//! Fault tests on the real API server, with the operator binary as it runs:
//! leader failover after `kill -9` and after a partition (the leader frozen
//! with SIGSTOP; every replica's webhook reviewing through the API server
//! throughout, except the frozen one), `kill -9` in the middle of a 100-app
//! rollout, and children deleted at random while the operator converges.
//! Each is bounded in count and time and prints its figures. (An API server
//! restart under a running operator is `tests/restart.rs`.)

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use stateless_operator::crd::StatelessApp;
use stateless_operator::webhook::ENFORCE_LABEL;
use support::operator::{OperatorBinary, free_port};
use support::{
    TestNamespace, WebhookConfiguration, client, condition, ensure_crd, kubeconfig_path, suffix,
    wait_until,
};

/// Lease duration of the failover test (`--leader-election-lease-seconds`).
const LEASE_SECONDS: u64 = 6;
/// Selects the namespace a failover candidate's webhook reviews.
const HOOK_LABEL: &str = "stateless.dev/faults-hook";
/// Apps of the rollout test.
const APPS: usize = 100;
/// Children deleted at random while the operator converges.
const DELETIONS: usize = 20;
const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
const WITHIN: Duration = Duration::from_secs(60);
/// The children of apps (the operator's config-hash key Secret has no instance).
const MANAGED: &str = "app.kubernetes.io/managed-by=stateless-operator,app.kubernetes.io/instance";

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "faults: {line}");
}

fn app(name: &str) -> StatelessApp {
    serde_json::from_value(json!({
        "apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
        "metadata": {"name": name},
        "spec": {"image": "ghcr.io/stateless-dev/session-demo:0.1.0"}
    }))
    .expect("app")
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn ready(apps: &Api<StatelessApp>, name: &str) -> bool {
    apps.get_opt(name).await.ok().flatten().is_some_and(|a| {
        condition(&a, "Ready").is_some_and(|(s, _, _)| s == "True")
            && a.status.as_ref().and_then(|s| s.observed_generation) == a.metadata.generation
    })
}

async fn writes(operator: &OperatorBinary) -> f64 {
    operator.metric_sum("stateless_api_writes_total", "").await
}

/// A candidate's webhook as the API server calls it: a
/// ValidatingWebhookConfiguration of its own (Services, `failurePolicy:
/// Fail`, so a review left unanswered refuses the request) selecting a
/// namespace of its own labelled `deny`, and a certificate Secret of its own.
struct Hook {
    addr: SocketAddr,
    config: WebhookConfiguration,
    secret: String,
    reviewed: TestNamespace,
}

impl Hook {
    async fn create(client: &Client) -> Self {
        let tag = suffix();
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let reviewed = TestNamespace::with_labels(
            client,
            "faults-hooked",
            [
                (ENFORCE_LABEL.to_string(), "deny".to_string()),
                (HOOK_LABEL.to_string(), tag.clone()),
            ]
            .into(),
        )
        .await;
        let config = WebhookConfiguration::create(
            client,
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": format!("stateless-faults-{tag}")},
                "webhooks": [{
                    "name": "validate.stateless.dev",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "clientConfig": {"url": format!("https://127.0.0.1:{}/validate", addr.port())},
                    "namespaceSelector": {"matchLabels": {HOOK_LABEL: tag}},
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
                               "operations": ["CREATE"], "scope": "Namespaced"}]
                }]
            }),
        )
        .await;
        Self {
            addr,
            config,
            secret: format!("faults-webhook-{tag}"),
            reviewed,
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!("--webhook-addr={}", self.addr),
            format!("--webhook-config-name={}", self.config.name),
            format!("--webhook-secret={}", self.secret),
            "--webhook-extra-san=127.0.0.1".to_string(),
        ]
    }

    /// A dry-run create of `service` in the reviewed namespace, as the API
    /// server admits it: Ok, or the error it answered.
    async fn admit(&self, service: &Service) -> Result<(), String> {
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        self.reviewed
            .api::<Service>()
            .create(&dry_run, service)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// This candidate's webhook reviews: a plain Service is admitted (with
    /// `failurePolicy: Fail`, only an answer admits it) and a sticky one is
    /// refused naming its rule.
    async fn reviews(&self) -> Result<(), String> {
        let service = |affinity: &str| -> Service {
            serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "sessionAffinity": affinity,
                         "ports": [{"port": 80, "targetPort": 8080}]}
            }))
            .expect("service")
        };
        self.admit(&service("None")).await?;
        match self.admit(&service("ClientIP")).await {
            Err(e) if e.contains("session-affinity") => Ok(()),
            other => Err(format!("a sticky Service: {other:?}")),
        }
    }

    /// Wait until the webhook reviews; panic with `operator`'s log after `WITHIN`.
    async fn wait_reviewing(&self, operator: &OperatorBinary) {
        let deadline = Instant::now() + WITHIN;
        loop {
            match self.reviews().await {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "the webhook of {} did not review within {WITHIN:?}: {e}\n{}",
                    operator.identity(),
                    operator.logs()
                ),
            }
        }
    }
}

/// An operator replica of the failover test, with its webhook.
struct Candidate {
    operator: OperatorBinary,
    hook: Hook,
}

async fn candidate(client: &Client, namespace: &str, lease: &str) -> Candidate {
    let hook = Hook::create(client).await;
    let mut args: Vec<String> = [
        format!("--namespace={namespace}"),
        format!("--operator-namespace={namespace}"),
        "--leader-elect".to_string(),
        format!("--leader-election-lease={lease}"),
        format!("--leader-election-lease-seconds={LEASE_SECONDS}"),
    ]
    .into();
    args.extend(hook.args());
    Candidate {
        operator: OperatorBinary::spawn(&args, &kubeconfig_path(), namespace),
        hook,
    }
}

/// One writer at a time, and every replica reviewing: the follower writes
/// nothing and its webhook answers; `kill -9` of the leader hands over
/// within about a lease duration; a leader frozen past its lease (SIGSTOP:
/// its API access gone, its webhook unanswered) is replaced, and once it
/// runs again it steps down without a single write, stays ready and its
/// webhook reviews again.
#[tokio::test]
async fn leader_failover_after_kill_and_partition() {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "faults-leader").await;
    let lease = format!("faults-{}", suffix());
    let leases: Api<Lease> = ns.api();
    let apps: Api<StatelessApp> = ns.api();
    let a = candidate(&client, &ns.name, &lease).await;
    let b = candidate(&client, &ns.name, &lease).await;
    wait_until(WITHIN, "one of the two holds the Lease", || async {
        holder(&leases, &lease).await.is_some()
    })
    .await;
    let first = holder(&leases, &lease).await.unwrap_or_default();
    let (mut leader, mut follower) = if first == a.operator.identity() {
        (a, b)
    } else {
        (b, a)
    };
    apps.create(&PostParams::default(), &app("one"))
        .await
        .expect("app one");
    wait_until(WITHIN, "app one Ready", || ready(&apps, "one")).await;
    follower.operator.wait_readyz(200, WITHIN).await;
    leader.hook.wait_reviewing(&leader.operator).await;
    follower.hook.wait_reviewing(&follower.operator).await;
    assert!(
        writes(&leader.operator).await > 0.0,
        "the leader reconciled"
    );
    assert_eq!(
        writes(&follower.operator).await,
        0.0,
        "the follower wrote nothing"
    );

    // kill -9: nothing is released; the follower waits out the lease.
    let killed = Instant::now();
    leader.operator.kill();
    apps.create(&PostParams::default(), &app("two"))
        .await
        .expect("app two");
    let successor = follower.operator.identity().to_string();
    wait_until(WITHIN, "the follower holds the Lease", || async {
        holder(&leases, &lease).await.as_deref() == Some(successor.as_str())
    })
    .await;
    let takeover = killed.elapsed();
    wait_until(WITHIN, "app two Ready", || ready(&apps, "two")).await;
    let converged = killed.elapsed();
    // Bound: a lease duration after the last renewal the follower saw, one
    // poll (a third of it) to notice, one more for the API round trips.
    let bound = Duration::from_secs(LEASE_SECONDS) * 5 / 3 + Duration::from_secs(2);
    assert!(
        takeover <= bound,
        "takeover after kill -9 took {takeover:?} (bound {bound:?})"
    );
    report(&format!(
        "kill -9 of the leader (lease {LEASE_SECONDS}s): takeover {:.2}s, an app created meanwhile Ready {:.2}s after the kill",
        takeover.as_secs_f64(),
        converged.as_secs_f64()
    ));

    // Partition: a fresh follower; the leader is frozen past its lease.
    std::mem::swap(&mut leader, &mut follower);
    drop(follower);
    let mut follower = candidate(&client, &ns.name, &lease).await;
    follower.operator.wait_readyz(200, WITHIN).await;
    follower.hook.wait_reviewing(&follower.operator).await;
    let before = writes(&leader.operator).await;
    let frozen = Instant::now();
    leader.operator.signal("STOP");
    apps.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": "ghcr.io/stateless-dev/session-demo:0.1.1"}})),
    )
    .await
    .expect("image change while the leader is frozen");
    let successor = follower.operator.identity().to_string();
    wait_until(WITHIN, "the new follower holds the Lease", || async {
        holder(&leases, &lease).await.as_deref() == Some(successor.as_str())
    })
    .await;
    let takeover = frozen.elapsed();
    let deployments: Api<Deployment> = ns.api();
    wait_until(WITHIN, "the successor rolled out the change", || async {
        deployments
            .get_opt("one")
            .await
            .ok()
            .flatten()
            .is_some_and(|d| {
                d.spec.and_then(|s| s.template.spec).is_some_and(|p| {
                    p.containers[0].image.as_deref()
                        == Some("ghcr.io/stateless-dev/session-demo:0.1.1")
                })
            })
    })
    .await;
    // The reviews are real: a frozen webhook answers nothing, and the API
    // server refuses what it alone would have reviewed.
    let unanswered = leader.hook.reviews().await;
    assert!(
        unanswered
            .as_ref()
            .is_err_and(|e| e.contains("failed calling webhook")),
        "the frozen leader's webhook answered: {unanswered:?}"
    );
    follower.hook.wait_reviewing(&follower.operator).await;
    leader.operator.signal("CONT");
    wait_until(WITHIN, "the old leader stepped down", || async {
        leader.operator.logs().contains("stepped down")
    })
    .await;
    // Past a renewal period, and with the image change in its cache to act on.
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS)).await;
    assert_eq!(
        writes(&leader.operator).await,
        before,
        "the old leader wrote after it woke up:\n{}",
        leader.operator.logs()
    );
    assert!(leader.operator.running(), "stepping down ends no process");
    leader.operator.wait_readyz(200, WITHIN).await;
    leader.hook.wait_reviewing(&leader.operator).await;
    assert_eq!(
        holder(&leases, &lease).await.as_deref(),
        Some(successor.as_str())
    );
    report(&format!(
        "leader frozen (SIGSTOP) with lease {LEASE_SECONDS}s: takeover {:.2}s; woken up, it stepped down with 0 writes, ready, its webhook reviewing",
        takeover.as_secs_f64()
    ));
    leader.operator.stop().await;
    follower.operator.stop().await;
    ns.delete_and_wait(CONVERGE_WITHIN).await;
}

/// Every managed object of kind `K` in the namespace, by its app (label
/// `app.kubernetes.io/instance`), as names.
async fn children_by_app<K>(client: &Client, namespace: &str) -> BTreeMap<String, Vec<String>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in api
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("list")
        .items
    {
        if item.meta().deletion_timestamp.is_some() {
            continue;
        }
        let app = item
            .labels()
            .get("app.kubernetes.io/instance")
            .cloned()
            .unwrap_or_default();
        out.entry(app).or_default().push(item.name_any());
    }
    out
}

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

/// `kill -9` of the operator in the middle of rolling out 100 apps, then a
/// new one that has children deleted at random while it converges: every
/// app converges with exactly one of each child, and no managed Redis
/// Secret is ever regenerated.
#[tokio::test]
async fn kill_mid_rollout_and_random_deletions_converge() {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "faults-rollout").await;
    let apps: Api<StatelessApp> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let args: Vec<String> = [
        format!("--namespace={}", ns.name),
        "--webhook-addr=off".to_string(),
    ]
    .into();
    let mut first = OperatorBinary::spawn(&args, &kubeconfig_path(), &ns.name);
    let started = Instant::now();
    for i in 0..APPS {
        apps.create(&PostParams::default(), &app(&format!("app-{i:03}")))
            .await
            .expect("create app");
    }
    wait_until(WITHIN, "a quarter of the Redis Secrets created", || async {
        secrets
            .list(&ListParams::default().labels(MANAGED))
            .await
            .is_ok_and(|l| l.items.len() >= APPS / 4)
    })
    .await;
    first.kill();
    let killed_after = started.elapsed();
    let before: BTreeMap<String, String> = secrets
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("secrets")
        .items
        .into_iter()
        .map(|s| (s.name_any(), s.uid().unwrap_or_default()))
        .collect();
    report(&format!(
        "kill -9 after {:.1}s, with {} of {APPS} Redis Secrets created",
        killed_after.as_secs_f64(),
        before.len()
    ));

    let second = OperatorBinary::spawn(&args, &kubeconfig_path(), &ns.name);
    let restarted = Instant::now();
    let seed = u64::from(std::process::id()) | 1;
    let mut random = Random(seed);
    let deployments: Api<Deployment> = ns.api();
    let services: Api<Service> = ns.api();
    let hpas: Api<HorizontalPodAutoscaler> = ns.api();
    let mut deleted = Vec::new();
    while deleted.len() < DELETIONS && restarted.elapsed() < CONVERGE_WITHIN {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let name = format!("app-{:03}", random.below(APPS));
        let gone = match random.below(4) {
            0 => deployments
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| format!("Deployment {name}")),
            1 => services
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| format!("Service {name}")),
            2 => hpas
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| format!("HorizontalPodAutoscaler {name}")),
            _ => deployments
                .delete(&format!("{name}-redis"), &DeleteParams::default())
                .await
                .map(|_| format!("Deployment {name}-redis")),
        };
        // Not created yet (404): the operator has not got there; try another.
        if let Ok(what) = gone {
            deleted.push(what);
        }
    }
    assert_eq!(deleted.len(), DELETIONS, "deleted {deleted:?}");

    let names: Vec<String> = (0..APPS).map(|i| format!("app-{i:03}")).collect();
    wait_until(CONVERGE_WITHIN, "every app Ready", || async {
        let listed = apps.list(&ListParams::default()).await;
        listed.is_ok_and(|l| {
            l.items.len() == APPS
                && l.items.iter().all(|a| {
                    condition(a, "Ready").is_some_and(|(s, _, _)| s == "True")
                        && a.status.as_ref().and_then(|s| s.observed_generation)
                            == a.metadata.generation
                })
        })
    })
    .await;
    let converged = restarted.elapsed();

    // Exactly one of each child per app (two Deployments and Services: the
    // app's and its Redis's), whatever was deleted on the way.
    let expect_each = |what: &str, found: BTreeMap<String, Vec<String>>, per_app: usize| {
        for name in &names {
            let got = found.get(name).map_or(0, Vec::len);
            assert_eq!(got, per_app, "{what} of {name}: {:?}", found.get(name));
        }
        let strays: BTreeSet<&String> = found.keys().filter(|k| !names.contains(k)).collect();
        assert!(strays.is_empty(), "{what} of no app: {strays:?}");
    };
    expect_each(
        "Deployments",
        children_by_app::<Deployment>(&client, &ns.name).await,
        2,
    );
    expect_each(
        "Services",
        children_by_app::<Service>(&client, &ns.name).await,
        2,
    );
    expect_each(
        "HorizontalPodAutoscalers",
        children_by_app::<HorizontalPodAutoscaler>(&client, &ns.name).await,
        1,
    );
    expect_each(
        "PodDisruptionBudgets",
        children_by_app::<PodDisruptionBudget>(&client, &ns.name).await,
        1,
    );
    expect_each(
        "NetworkPolicies",
        children_by_app::<NetworkPolicy>(&client, &ns.name).await,
        1,
    );
    expect_each(
        "Secrets",
        children_by_app::<Secret>(&client, &ns.name).await,
        1,
    );
    let after: BTreeMap<String, String> = secrets
        .list(&ListParams::default().labels(MANAGED))
        .await
        .expect("secrets")
        .items
        .into_iter()
        .map(|s| (s.name_any(), s.uid().unwrap_or_default()))
        .collect();
    for (name, uid) in &before {
        assert_eq!(
            after.get(name),
            Some(uid),
            "Redis Secret {name} was regenerated"
        );
    }
    report(&format!(
        "restarted operator: {APPS} apps Ready {:.1}s after its start, {DELETIONS} children deleted on the way (seed {seed}), one of each child per app, {} Redis Secrets from before the kill kept",
        converged.as_secs_f64(),
        before.len()
    ));
    drop(second);
    let deleting = Instant::now();
    ns.delete_and_wait(CONVERGE_WITHIN).await;
    report(&format!(
        "the namespace with {APPS} apps deleted in {:.1}s",
        deleting.elapsed().as_secs_f64()
    ));
}
