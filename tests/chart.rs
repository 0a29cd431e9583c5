//! The Helm chart, installed the way users do, against the real API server of
//! the local plane: `helm install`, `upgrade` and `uninstall`, and proof that
//! its RBAC is enough for a full reconcile and no more: the operator binary
//! runs out of the cluster with the chart's container args while
//! impersonating the chart's ServiceAccount (kube-rs kubeconfig impersonation).
//!
//! The offline checks (CRDs in sync, versions, README values table) need no
//! cluster; `hack/helm-checks.sh` lints, renders and tests bad values.

mod support;

#[path = "e2e/install.rs"]
mod install;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Node, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use stateless_operator::crd::StatelessApp;

use install::{OperatorProcess, Release, can_i, impersonating, is_forbidden};
use support::{TestNamespace, apply_objects, client, wait_until};

const WAIT: Duration = Duration::from_secs(120);

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

// ---------------------------------------------------------------- offline

#[test]
fn chart_crds_are_byte_identical_to_the_committed_crds() {
    let top = repo("crds");
    let chart = repo("charts/stateless-operator/crds");
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&chart),
        names(&top),
        "charts/stateless-operator/crds/ must hold exactly the files of crds/"
    );
    for name in names(&top) {
        let expected = std::fs::read(top.join(&name)).expect("read crds/ file");
        let actual = std::fs::read(chart.join(&name)).expect("read chart crds/ file");
        assert!(
            expected == actual,
            "charts/stateless-operator/crds/{name} differs from crds/{name}; \
             run `cp crds/{name} charts/stateless-operator/crds/`"
        );
    }
}

#[test]
fn chart_version_and_app_version_are_the_crate_version() {
    let text =
        std::fs::read_to_string(repo("charts/stateless-operator/Chart.yaml")).expect("Chart.yaml");
    let chart: serde_json::Value = serde_saphyr::from_str(&text).expect("Chart.yaml parses");
    assert_eq!(
        chart["version"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml version"
    );
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion (the default image tag)"
    );
}

/// Every key of values.yaml has a row in the chart README's values table,
/// and every row names a key that exists.
#[test]
fn chart_readme_documents_every_value() {
    let values: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo("charts/stateless-operator/values.yaml"))
            .expect("values.yaml"),
    )
    .expect("values.yaml parses");
    let readme =
        std::fs::read_to_string(repo("charts/stateless-operator/README.md")).expect("README.md");
    let (_, values_table) = readme
        .split_once("## Values")
        .expect("the chart README has a \"## Values\" section");
    let rows: Vec<String> = values_table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(key, _)| key.to_string()))
        .collect();

    fn walk(prefix: &str, value: &serde_json::Value, rows: &[String], missing: &mut Vec<String>) {
        if rows.iter().any(|r| r == prefix) {
            return;
        }
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, child, rows, missing);
                }
            }
            _ => missing.push(prefix.to_string()),
        }
    }
    let mut missing = Vec::new();
    walk("", &values, &rows, &mut missing);
    assert!(
        missing.is_empty(),
        "values without a row in charts/stateless-operator/README.md: {missing:?}"
    );
    for row in &rows {
        let pointer = format!("/{}", row.replace('.', "/"));
        assert!(
            values.pointer(&pointer).is_some(),
            "README row `{row}` names no key of values.yaml"
        );
    }
}

// ---------------------------------------------------------------- cluster

fn release_name() -> String {
    format!("so-{}", support::suffix())
}

/// A namespace where Pod Security `restricted` is enforced: the operator's
/// Pods are only admitted if the chart's security settings meet it.
async fn restricted_namespace(client: &Client, prefix: &str) -> TestNamespace {
    let labels = BTreeMap::from([(
        "pod-security.kubernetes.io/enforce".to_string(),
        "restricted".to_string(),
    )]);
    TestNamespace::with_labels(client, prefix, labels).await
}

async fn crd_established(client: &Client) {
    support::wait_crd_established(client, stateless_operator::crd::CRD_NAME).await;
}

fn container_args(deployment: &Deployment) -> Vec<String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.args.clone())
        .unwrap_or_default()
}

/// The operator Deployment as the chart renders it: restricted security,
/// probes, downward API, flags; and its Pods admitted and Ready.
async fn check_operator_deployment(
    client: &Client,
    release: &Release,
    replicas: i32,
) -> Deployment {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.namespace);
    let name = release.fullname();
    wait_until(
        WAIT,
        &format!("Deployment {name} with {replicas} ready replicas"),
        || async {
            deployments.get(&name).await.ok().is_some_and(|d| {
                let status = d.status.clone().unwrap_or_default();
                d.spec.as_ref().and_then(|s| s.replicas) == Some(replicas)
                    && status.ready_replicas.unwrap_or(0) == replicas
                    && status.updated_replicas.unwrap_or(0) == replicas
            })
        },
    )
    .await;
    let deployment = deployments.get(&name).await.expect("operator Deployment");
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod spec");
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(name.as_str()),
        "runs as the chart's ServiceAccount"
    );
    let pod_security = pod.security_context.clone().expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".to_string())
    );
    let container = &pod.containers[0];
    let security = container
        .security_context
        .clone()
        .expect("container securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    let probe = |p: Option<&k8s_openapi::api::core::v1::Probe>| {
        p.and_then(|p| p.http_get.clone())
            .map(|h| (h.path.unwrap_or_default(), h.port))
    };
    assert_eq!(
        probe(container.liveness_probe.as_ref()),
        Some(("/healthz".to_string(), IntOrString::String("http".into())))
    );
    assert_eq!(
        probe(container.readiness_probe.as_ref()),
        Some(("/readyz".to_string(), IntOrString::String("http".into())))
    );
    let field_ref = |env: &str| {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == env)
            .and_then(|e| e.value_from.clone())
            .and_then(|v| v.field_ref)
            .map(|f| f.field_path)
    };
    assert_eq!(field_ref("POD_NAME").as_deref(), Some("metadata.name"));
    assert_eq!(
        field_ref("POD_NAMESPACE").as_deref(),
        Some("metadata.namespace")
    );
    let limits = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.clone())
        .unwrap_or_default();
    assert!(limits.contains_key("memory"), "a memory limit is set");
    // Admitted under Pod Security `restricted` and Ready (kwok plays the kubelet here).
    let pods: Api<Pod> = Api::namespaced(client.clone(), &release.namespace);
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    let ready = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("operator pods")
        .items
        .into_iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    assert!(ready >= replicas as usize, "{ready} Ready operator pods");
    deployment
}

async fn check_webhook_configuration(client: &Client, release: &Release) {
    let name = release.fullname();
    let config = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("ValidatingWebhookConfiguration {name}: {e}"));
    let webhooks = config.webhooks.expect("webhooks");
    assert_eq!(webhooks.len(), 1);
    let hook = &webhooks[0];
    assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(hook.side_effects, "None");
    assert!(hook.timeout_seconds.is_some_and(|t| t <= 5));
    assert_eq!(hook.admission_review_versions, vec!["v1".to_string()]);
    let service = hook
        .client_config
        .service
        .clone()
        .expect("service clientConfig");
    assert_eq!(service.name, format!("{name}-webhook"));
    assert_eq!(service.namespace, release.namespace);
    assert_eq!(service.path.as_deref(), Some("/validate"));
    assert_eq!(service.port, Some(443));
    let expressions = hook
        .namespace_selector
        .clone()
        .and_then(|s| s.match_expressions)
        .unwrap_or_default();
    assert!(expressions.iter().any(|e| e.key == "stateless.dev/enforce"
        && e.operator == "In"
        && e.values == Some(vec!["deny".into(), "warn".into()])));
    assert!(
        expressions
            .iter()
            .any(|e| e.key == "kubernetes.io/metadata.name"
                && e.operator == "NotIn"
                && e.values
                    .as_ref()
                    .is_some_and(|v| v.contains(&release.namespace)
                        && v.contains(&"kube-system".to_string())))
    );
    let resources: Vec<String> = hook
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    for resource in [
        "deployments",
        "statefulsets",
        "services",
        "ingresses",
        "statelessapps",
    ] {
        assert!(
            resources.iter().any(|r| r == resource),
            "webhook rule for {resource}"
        );
    }
}

/// Read-only lists across all namespaces: what a cluster-wide operator's watches do first.
async fn lists_everywhere(client: &Client) -> Vec<(&'static str, bool)> {
    let one = ListParams::default().limit(1);
    vec![
        (
            "statelessapps",
            Api::<StatelessApp>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "deployments",
            Api::<Deployment>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "services",
            Api::<Service>::all(client.clone()).list(&one).await.is_ok(),
        ),
        (
            "configmaps",
            Api::<ConfigMap>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "secrets",
            Api::<Secret>::all(client.clone()).list(&one).await.is_ok(),
        ),
        (
            "persistentvolumeclaims",
            Api::<PersistentVolumeClaim>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "horizontalpodautoscalers",
            Api::<HorizontalPodAutoscaler>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "poddisruptionbudgets",
            Api::<PodDisruptionBudget>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "networkpolicies",
            Api::<NetworkPolicy>::all(client.clone())
                .list(&one)
                .await
                .is_ok(),
        ),
        (
            "cronjobs",
            Api::<CronJob>::all(client.clone()).list(&one).await.is_ok(),
        ),
        (
            "ingresses",
            Api::<Ingress>::all(client.clone()).list(&one).await.is_ok(),
        ),
    ]
}

/// What no configuration of the chart may grant, checked as the operator.
async fn assert_never_granted(operator: &Client, namespace: &str) {
    // A real request (dry run, so nothing happens if the check is wrong).
    let nodes: Api<Node> = Api::all(operator.clone());
    let delete = nodes
        .delete(
            "kwok-node-1",
            &DeleteParams {
                dry_run: true,
                ..Default::default()
            },
        )
        .await;
    assert!(
        is_forbidden(&delete),
        "deleting a node must be refused: {delete:?}"
    );
    let pods = Api::<Pod>::namespaced(operator.clone(), namespace)
        .list(&ListParams::default())
        .await;
    assert!(
        is_forbidden(&pods),
        "the operator never reads Pods: {pods:?}"
    );
    for (verb, group, resource) in [
        ("update", "", "secrets"),
        ("patch", "", "secrets"),
        ("create", "", "pods"),
        ("create", "", "pods/exec"),
        ("update", "apps", "deployments"),
        ("delete", "stateless.dev", "statelessapps"),
        ("update", "stateless.dev", "statelessapps"),
        ("create", "rbac.authorization.k8s.io", "rolebindings"),
        ("delete", "", "namespaces"),
        (
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
        ),
    ] {
        assert!(
            !can_i(operator, verb, group, resource, Some(namespace), None).await,
            "the operator must not {verb} {group}/{resource} in {namespace}"
        );
    }
    for (verb, group, resource) in [
        ("delete", "", "nodes"),
        ("create", "rbac.authorization.k8s.io", "clusterroles"),
        (
            "patch",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
        (
            "patch",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        ),
    ] {
        assert!(
            !can_i(operator, verb, group, resource, None, None).await,
            "the operator must not {verb} {group}/{resource} cluster-wide"
        );
    }
}

/// Built-in webhook certificates: the operator may create its Secret and
/// write the CA into its own webhook configuration, and nothing else.
/// Built-in webhook certificates, done by the operator under the chart's
/// RBAC: it created its Secret and wrote the CA into its own webhook
/// configuration, and may touch no other Secret or configuration by name.
async fn check_builtin_webhook_certificates(
    client: &Client,
    operator: &Client,
    release: &Release,
) -> Vec<u8> {
    let fullname = release.fullname();
    let secret_name = format!("{fullname}-webhook-tls");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &release.namespace);
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let ca_bundle = || async {
        configs
            .get(&fullname)
            .await
            .ok()
            .and_then(|c| c.webhooks)
            .and_then(|w| w.first().and_then(|h| h.client_config.ca_bundle.clone()))
            .map(|b| b.0)
    };
    wait_until(WAIT, "the operator wrote the webhook caBundle", || async {
        ca_bundle().await.is_some_and(|b| !b.is_empty())
    })
    .await;
    let secret = secrets
        .get(&secret_name)
        .await
        .unwrap_or_else(|e| panic!("the operator created Secret {secret_name}: {e}"));
    let data = secret.data.unwrap_or_default();
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(data.contains_key(key), "{secret_name} has {key}");
    }
    let bundle = ca_bundle().await.expect("caBundle");
    assert_eq!(
        Some(&bundle),
        data.get("ca.crt").map(|b| &b.0),
        "caBundle is the CA of the Secret"
    );
    assert!(
        !can_i(
            operator,
            "patch",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            Some("some-other-webhook"),
        )
        .await,
        "only its own webhook configuration"
    );
    assert!(
        !can_i(
            operator,
            "update",
            "",
            "secrets",
            Some(&release.namespace),
            Some("some-other-secret")
        )
        .await,
        "only its own webhook Secret"
    );
    bundle
}

/// Leader election under the chart's RBAC: the operator holds its Lease.
async fn check_leader_lease(client: &Client, release: &Release, holder: &str) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &release.namespace);
    let name = release.fullname();
    wait_until(WAIT, &format!("Lease {name} held by {holder}"), || async {
        leases
            .get_opt(&name)
            .await
            .ok()
            .flatten()
            .is_some_and(|l| l.spec.and_then(|s| s.holder_identity).as_deref() == Some(holder))
    })
    .await;
}

async fn assert_metrics_served(operator: &OperatorProcess) {
    let (status, body) = operator.get("/metrics").await;
    assert_eq!(status, 200, "/metrics: {body}");
    assert!(body.contains("stateless_reconciliations"), "{body}");
    assert_eq!(operator.get("/healthz").await.0, 200);
}

fn assert_no_denied_requests(operator: &OperatorProcess) {
    let denied = operator.denied_requests();
    assert!(
        denied.is_empty(),
        "requests refused to the operator:\n{}",
        denied.join("\n")
    );
}

/// The chart's arguments are accepted by the binary's own parser, for the
/// default values and with every option on (no cluster needed).
#[test]
fn chart_flags_are_accepted_by_the_operator() {
    use clap::Parser;
    for (what, files) in [
        ("default values", vec![]),
        (
            "all-on values",
            vec!["charts/stateless-operator/ci/all-on-values.yaml"],
        ),
    ] {
        for set in [
            vec![],
            vec!["webhook.enabled=false", "leaderElection.enabled=false"],
            vec!["sessionStore.image=mirror.example/library/redis:7.4.6-alpine"],
        ] {
            let objects = install::render(&set, &files);
            let deployment = objects
                .iter()
                .find(|o| o["kind"] == "Deployment")
                .expect("a Deployment");
            let args = install::operator_args(deployment);
            let argv = std::iter::once("stateless-operator".to_string()).chain(args.clone());
            if let Err(e) = stateless_operator::cli::Cli::try_parse_from(argv) {
                panic!("{what} {set:?}: the operator refuses the chart's args {args:?}:\n{e}");
            }
        }
    }
}

/// `sessionStore.image` becomes `--session-store-image` only when set, so an
/// empty value leaves the operator's built-in default in force.
#[test]
fn chart_session_store_image_reaches_the_operator() {
    use clap::Parser;
    use stateless_operator::cli::{Cli, Command};
    let run_args = |set: &[&str]| {
        let objects = install::render(set, &[]);
        let deployment = objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("a Deployment");
        let args = install::operator_args(deployment);
        let argv = std::iter::once("stateless-operator".to_string()).chain(args.clone());
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Command::Run(run)) => (args, run),
            other => panic!("the chart's args {args:?} do not parse as `run`: {other:?}"),
        }
    };
    let (args, run) = run_args(&[]);
    assert!(
        !args.iter().any(|a| a.starts_with("--session-store-image")),
        "{args:?}"
    );
    assert_eq!(
        run.session_store_image,
        stateless_operator::crd::DEFAULT_REDIS_IMAGE
    );
    let mirror = "mirror.example/library/redis:7.4.6-alpine";
    let (args, run) = run_args(&[&format!("sessionStore.image={mirror}")]);
    assert!(
        args.contains(&format!("--session-store-image={mirror}")),
        "{args:?}"
    );
    assert_eq!(run.session_store_image, mirror);
}

fn find<'a>(
    objects: &'a [serde_json::Value],
    kind: &str,
    name: &str,
) -> Option<&'a serde_json::Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn rule_resources(role: &serde_json::Value) -> Vec<String> {
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["resources"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect()
}

/// Which roles each mode renders (no cluster needed).
#[test]
fn chart_rbac_follows_the_modes() {
    // Defaults: cluster-wide, built-in webhook certificates, leader election.
    let objects = install::render(&[], &[]);
    let controller = find(&objects, "ClusterRole", "release-stateless-operator")
        .expect("cluster-wide controller role");
    assert!(rule_resources(controller).contains(&"statelessapps".to_string()));
    let webhook = find(&objects, "Role", "release-stateless-operator-webhook")
        .expect("built-in certificates: the Secret role");
    assert_eq!(webhook["metadata"]["namespace"], "stateless-system");
    assert!(
        rule_resources(
            find(
                &objects,
                "ClusterRole",
                "release-stateless-operator-webhook"
            )
            .expect("webhook ClusterRole")
        )
        .contains(&"validatingwebhookconfigurations".to_string())
    );
    let lease = find(
        &objects,
        "Role",
        "release-stateless-operator-leader-election",
    )
    .expect("leader election role");
    assert_eq!(rule_resources(lease), ["leases", "leases"]);
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "Role" && o["metadata"]["name"] == "release-stateless-operator")
    );

    // Every option on: namespaced, cert-manager.
    let objects = install::render(&[], &["charts/stateless-operator/ci/all-on-values.yaml"]);
    assert!(find(&objects, "ClusterRole", "platform-stateless").is_none());
    let roles: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Role" && o["metadata"]["name"] == "platform-stateless")
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(roles, ["team-a", "team-b"]);
    assert!(
        find(&objects, "Role", "platform-stateless-webhook").is_none(),
        "cert-manager mode: no Secret rights for the webhook"
    );
    assert_eq!(
        rule_resources(
            find(&objects, "ClusterRole", "platform-stateless-webhook")
                .expect("webhook ClusterRole")
        ),
        ["namespaces"],
        "cert-manager mode: no webhook configuration rights"
    );
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("Deployment");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains("platform-stateless-webhook-cert"),
        "{volumes}"
    );

    // Webhook and leader election off: none of their rights, and the flags say so.
    let objects = install::render(
        &["webhook.enabled=false", "leaderElection.enabled=false"],
        &[],
    );
    for (kind, name) in [
        ("ClusterRole", "release-stateless-operator-webhook"),
        ("Role", "release-stateless-operator-webhook"),
        ("Role", "release-stateless-operator-leader-election"),
        (
            "ValidatingWebhookConfiguration",
            "release-stateless-operator",
        ),
        ("Service", "release-stateless-operator-webhook"),
    ] {
        assert!(
            find(&objects, kind, name).is_none(),
            "{kind} {name} rendered"
        );
    }
    let args = install::operator_args(
        objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("Deployment"),
    );
    assert!(args.contains(&"--webhook-addr=off".to_string()), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--leader-elect")),
        "{args:?}"
    );
}

/// Install in cluster-wide mode; run the operator binary with the chart's
/// args under the chart's identity through the full reconcile of both
/// examples; upgrade; refuse a second install of the same name; uninstall
/// (CRD, apps and their children stay); install again (the apps are picked up
/// with their data intact).
#[tokio::test]
async fn cluster_wide_install_reconciles_upgrades_and_uninstalls_keeping_apps() {
    let client = client().await;
    let release_ns = restricted_namespace(&client, "chart-cw").await;
    let apps_ns = TestNamespace::new(&client, "chart-cw-apps").await;
    let name = release_name();
    let mut release = Release::install(&name, &release_ns.name, &[]);

    // What helm installed.
    crd_established(&client).await;
    assert_eq!(release.status()["info"]["status"], "deployed");
    let deployment = check_operator_deployment(&client, &release, 1).await;
    let args = container_args(&deployment);
    for arg in [
        "run",
        "--concurrency=16",
        "--log-format=json",
        "--log-level=info",
        "--leader-elect",
        "--webhook-cert-mode=builtin",
    ] {
        assert!(args.iter().any(|a| a == arg), "{arg} in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "cluster-wide mode watches every namespace: {args:?}"
    );
    let fullname = release.fullname();
    Api::<ServiceAccount>::namespaced(client.clone(), &release.namespace)
        .get(&fullname)
        .await
        .expect("ServiceAccount");
    let cluster_role = Api::<ClusterRole>::all(client.clone())
        .get(&fullname)
        .await
        .expect("ClusterRole");
    assert!(
        cluster_role
            .rules
            .iter()
            .flatten()
            .all(|r| r.resource_names.is_none()
                && !r.verbs.iter().any(|v| v == "*")
                && !r.resources.iter().flatten().any(|res| res == "*")),
        "no wildcards: {:?}",
        cluster_role.rules
    );
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&fullname)
        .await
        .expect("ClusterRoleBinding");
    let subject = &binding.subjects.expect("subjects")[0];
    assert_eq!(
        (
            subject.kind.as_str(),
            subject.name.as_str(),
            subject.namespace.as_deref()
        ),
        (
            "ServiceAccount",
            fullname.as_str(),
            Some(release.namespace.as_str())
        )
    );
    let services: Api<Service> = Api::namespaced(client.clone(), &release.namespace);
    let metrics = services
        .get(&format!("{fullname}-metrics"))
        .await
        .expect("metrics Service");
    let port = &metrics.spec.expect("spec").ports.expect("ports")[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (8080, Some(IntOrString::String("http".into())))
    );
    let webhook = services
        .get(&format!("{fullname}-webhook"))
        .await
        .expect("webhook Service");
    let port = &webhook.spec.expect("spec").ports.expect("ports")[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (443, Some(IntOrString::String("webhook".into())))
    );
    check_webhook_configuration(&client, &release).await;

    // RBAC is sufficient: the operator binary with the chart's args, as the
    // chart's ServiceAccount, through the full reconcile of both examples.
    // It watches only the test's namespace (the plane is shared) but holds
    // the cluster-wide role; the lists below show it could watch everywhere.
    let operator_client = impersonating(&release.service_account_user()).await;
    let operator = OperatorProcess::start(&release, &args, Some(&[&apps_ns.name])).await;
    let mut objects = install::example("basic.yaml");
    objects.extend(install::example("full.yaml"));
    apply_objects(&client, &apps_ns.name, &objects).await;
    let apps: Api<StatelessApp> = Api::namespaced(client.clone(), &apps_ns.name);
    support::wait_ready(&apps, "demo", WAIT).await;
    support::wait_ready(&apps, "demo-full", WAIT).await;
    check_leader_lease(&client, &release, &operator.pod_name).await;
    let ca_bundle = check_builtin_webhook_certificates(&client, &operator_client, &release).await;
    assert_metrics_served(&operator).await;
    for (resource, ok) in lists_everywhere(&operator_client).await {
        assert!(
            ok,
            "cluster-wide mode: the operator can list {resource} in all namespaces"
        );
    }
    // Its Events were published (events.k8s.io create/patch).
    let events = Api::<Event>::namespaced(client.clone(), &apps_ns.name)
        .list(&ListParams::default())
        .await
        .expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reporting_controller.as_deref() == Some("stateless-operator")),
        "the operator published Events"
    );
    // ... and minimal.
    assert_never_granted(&operator_client, &apps_ns.name).await;
    assert_no_denied_requests(&operator);
    operator.stop().await;

    // Upgrade with changed values.
    release.upgrade(&[
        "concurrency=8",
        "logLevel=stateless_operator=debug",
        "replicaCount=2",
    ]);
    assert_eq!(release.status()["version"], 2);
    let deployment = check_operator_deployment(&client, &release, 2).await;
    let args = container_args(&deployment);
    assert!(args.iter().any(|a| a == "--concurrency=8"), "{args:?}");
    assert!(
        args.iter()
            .any(|a| a == "--log-level=stateless_operator=debug"),
        "{args:?}"
    );
    let config = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(&fullname)
        .await
        .expect("webhook configuration after upgrade");
    assert_eq!(
        config
            .webhooks
            .as_ref()
            .and_then(|w| w.first())
            .and_then(|w| w.client_config.ca_bundle.as_ref())
            .map(|b| b.0.clone()),
        Some(ca_bundle),
        "helm upgrade keeps the caBundle the operator wrote"
    );

    // Installing the same release name again is refused and changes nothing.
    let again = install::helm(&["install", &name, install::CHART, "-n", &release.namespace]);
    assert!(!again.success, "a second install of {name} must fail");
    assert!(
        again
            .stderr
            .contains("cannot reuse a name that is still in use"),
        "{}",
        again.stderr
    );
    assert_eq!(release.status()["version"], 2);

    // Uninstall: the operator and its RBAC go, the CRD and the apps stay.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &apps_ns.name);
    let redis_secret = || async {
        secrets
            .get("demo-redis")
            .await
            .expect("the managed Redis Secret")
            .data
            .unwrap_or_default()
    };
    let password_before = redis_secret().await;
    let app_deployments: Api<Deployment> = Api::namespaced(client.clone(), &apps_ns.name);
    let app_deployment_uid = app_deployments
        .get("demo")
        .await
        .expect("app deployment")
        .uid();
    release.uninstall();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.namespace);
    wait_until(WAIT, "operator Deployment deleted", || async {
        deployments
            .get_opt(&fullname)
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&fullname)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        Api::<ClusterRoleBinding>::all(client.clone())
            .get_opt(&fullname)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get_opt(&fullname)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        services
            .get_opt(&format!("{fullname}-metrics"))
            .await
            .expect("get")
            .is_none()
    );
    crd_established(&client).await;
    for app in ["demo", "demo-full"] {
        assert!(
            apps.get_opt(app).await.expect("get").is_some(),
            "{app} survives uninstall"
        );
    }
    assert_eq!(
        app_deployments
            .get("demo")
            .await
            .expect("app deployment survives")
            .uid(),
        app_deployment_uid
    );
    // The operator's identity lost its rights with the release.
    let refused = Api::<StatelessApp>::namespaced(operator_client.clone(), &apps_ns.name)
        .list(&ListParams::default())
        .await;
    assert!(is_forbidden(&refused), "{refused:?}");

    // Installing again picks the apps up where they were; no data is lost.
    let mut release = Release::install(&name, &release_ns.name, &[]);
    let args = container_args(&check_operator_deployment(&client, &release, 1).await);
    let operator = OperatorProcess::start(&release, &args, Some(&[&apps_ns.name])).await;
    // A spec change the new operator must reconcile (a new generation).
    apps.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": {"min": 2, "max": 7}}})),
    )
    .await
    .expect("scale");
    support::wait_ready(&apps, "demo", WAIT).await;
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &apps_ns.name)
        .get("demo")
        .await
        .expect("HPA");
    assert_eq!(hpa.spec.map(|s| s.max_replicas), Some(7));
    assert_eq!(
        redis_secret().await,
        password_before,
        "the session store Secret (password) is unchanged"
    );
    assert_eq!(
        app_deployments
            .get("demo")
            .await
            .expect("app deployment")
            .uid(),
        app_deployment_uid,
        "the same Deployment, not a new one"
    );
    assert_no_denied_requests(&operator);
    operator.stop().await;
    release.uninstall();
}

/// Namespaced mode: Roles only in the watched namespaces, enough for the
/// full reconcile there, and nothing elsewhere.
#[tokio::test]
async fn namespaced_install_is_confined_to_the_watched_namespaces() {
    let client = client().await;
    let release_ns = restricted_namespace(&client, "chart-ns").await;
    let team_a = TestNamespace::new(&client, "chart-ns-a").await;
    let team_b = TestNamespace::new(&client, "chart-ns-b").await;
    let other = TestNamespace::new(&client, "chart-ns-other").await;
    let name = release_name();
    let watch = format!("watchNamespaces={{{},{}}}", team_a.name, team_b.name);
    let release = Release::install(&name, &release_ns.name, &[&watch]);
    crd_established(&client).await;
    let fullname = release.fullname();

    let deployment = check_operator_deployment(&client, &release, 1).await;
    let args = container_args(&deployment);
    let flag = format!("--namespace={},{}", team_a.name, team_b.name);
    assert!(args.contains(&flag), "{flag} in {args:?}");
    for ns in [&team_a.name, &team_b.name] {
        Api::<Role>::namespaced(client.clone(), ns)
            .get(&fullname)
            .await
            .unwrap_or_else(|e| panic!("Role {fullname} in {ns}: {e}"));
        Api::<RoleBinding>::namespaced(client.clone(), ns)
            .get(&fullname)
            .await
            .unwrap_or_else(|e| panic!("RoleBinding {fullname} in {ns}: {e}"));
    }
    assert!(
        Api::<Role>::namespaced(client.clone(), &other.name)
            .list(&ListParams::default())
            .await
            .expect("roles")
            .items
            .is_empty()
    );
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&fullname)
            .await
            .expect("get")
            .is_none(),
        "no cluster-wide role for the controller in namespaced mode"
    );
    // The webhook's ClusterRole is the only cluster-wide grant: namespaces and its own configuration.
    let webhook_role = Api::<ClusterRole>::all(client.clone())
        .get(&format!("{fullname}-webhook"))
        .await
        .expect("webhook ClusterRole");
    for rule in webhook_role.rules.iter().flatten() {
        let resources = rule.resources.clone().unwrap_or_default();
        assert!(
            resources == ["namespaces"]
                || (resources == ["validatingwebhookconfigurations"]
                    && rule.resource_names == Some(vec![fullname.clone()])),
            "unexpected cluster-wide rule {rule:?}"
        );
        assert!(
            rule.verbs
                .iter()
                .all(|v| ["get", "list", "watch", "patch"].contains(&v.as_str()))
        );
    }

    // Sufficient: the binary with exactly the chart's args (--namespace
    // included), both examples, one per watched namespace.
    let operator_client = impersonating(&release.service_account_user()).await;
    let operator = OperatorProcess::start(&release, &args, None).await;
    apply_objects(&client, &team_a.name, &install::example("basic.yaml")).await;
    apply_objects(&client, &team_b.name, &install::example("full.yaml")).await;
    support::wait_ready(&Api::namespaced(client.clone(), &team_a.name), "demo", WAIT).await;
    support::wait_ready(
        &Api::namespaced(client.clone(), &team_b.name),
        "demo-full",
        WAIT,
    )
    .await;
    check_leader_lease(&client, &release, &operator.pod_name).await;
    check_builtin_webhook_certificates(&client, &operator_client, &release).await;
    assert_metrics_served(&operator).await;

    // Minimal: nothing outside the watched namespaces.
    assert_never_granted(&operator_client, &other.name).await;
    assert_never_granted(&operator_client, &team_a.name).await;
    let secret = Api::<Secret>::namespaced(operator_client.clone(), &other.name)
        .get_opt("anything")
        .await;
    assert!(
        is_forbidden(&secret),
        "reading a Secret in an unwatched namespace: {secret:?}"
    );
    let secrets = Api::<Secret>::namespaced(operator_client.clone(), &other.name)
        .list(&ListParams::default())
        .await;
    assert!(
        is_forbidden(&secrets),
        "listing Secrets in an unwatched namespace: {secrets:?}"
    );
    let release_secrets = Api::<Secret>::namespaced(operator_client.clone(), &release.namespace)
        .list(&ListParams::default())
        .await;
    assert!(
        is_forbidden(&release_secrets),
        "its own namespace is not watched: no Secret list there either"
    );
    for (resource, ok) in lists_everywhere(&operator_client).await {
        assert!(
            !ok,
            "namespaced mode: listing {resource} in all namespaces must be refused"
        );
    }
    for (verb, group, resource) in [
        ("create", "apps", "deployments"),
        ("patch", "", "services"),
        ("create", "", "configmaps"),
        ("get", "stateless.dev", "statelessapps"),
    ] {
        assert!(
            !can_i(
                &operator_client,
                verb,
                group,
                resource,
                Some(&other.name),
                None
            )
            .await,
            "{verb} {resource} in an unwatched namespace"
        );
        assert!(
            can_i(
                &operator_client,
                verb,
                group,
                resource,
                Some(&team_b.name),
                None
            )
            .await,
            "{verb} {resource} in a watched namespace"
        );
    }
    assert_no_denied_requests(&operator);
    operator.stop().await;
    drop(release);
}
