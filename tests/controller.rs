//! The StatelessApp controller against the real API server of the local plane.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use stateless_operator::crd::StatelessApp;

use support::{
    Operator, TestNamespace, apply_objects, audited_writes, client, condition, config, ensure_crd,
    load_yaml, wait_crd_established, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(90);

async fn setup(prefix: &str) -> (Client, TestNamespace, Operator) {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start(&client, &ns.name);
    (client, ns, operator)
}

fn basic_app(name: &str) -> serde_json::Value {
    let mut app = load_yaml("examples/basic.yaml").remove(0);
    app["metadata"]["name"] = json!(name);
    app
}

/// The name of the StatelessApp among an example's objects.
fn app_name_in(objects: &[serde_json::Value]) -> String {
    objects
        .iter()
        .find(|o| o["kind"] == "StatelessApp")
        .and_then(|o| o["metadata"]["name"].as_str())
        .expect("the example has a StatelessApp")
        .to_string()
}

fn owned_by(obj: &impl kube::Resource, app: &StatelessApp) -> bool {
    obj.owner_references().iter().any(|o| {
        o.controller == Some(true)
            && Some(&o.uid) == app.metadata.uid.as_ref()
            && o.kind == "StatelessApp"
    })
}

#[tokio::test]
async fn basic_example_converges_heals_and_respects_the_hpa() {
    let (client, ns, _operator) = setup("ctrl-basic").await;
    let apps = ns.api::<StatelessApp>();
    apply_objects(&client, &ns.name, &[basic_app("web")]).await;
    let app = wait_ready(&apps, "web", WAIT).await;

    // Every child exists, is controlled by the app and has what the spec says.
    let deployments = ns.api::<Deployment>();
    let services = ns.api::<Service>();
    let deployment = deployments.get("web").await.expect("Deployment web");
    assert!(owned_by(&deployment, &app));
    let spec = deployment.spec.clone().expect("deployment spec");
    let strategy = spec
        .strategy
        .clone()
        .and_then(|s| s.rolling_update)
        .expect("rolling update");
    assert_eq!(
        strategy.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );
    let pod = spec.template.spec.clone().expect("pod spec");
    let container = &pod.containers[0];
    let redis_url = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "REDIS_URL")
        .and_then(|e| e.value_from.clone())
        .and_then(|v| v.secret_key_ref)
        .expect("REDIS_URL from a Secret key");
    assert_eq!(
        (redis_url.name.as_str(), redis_url.key.as_str()),
        ("web-redis", "url")
    );
    assert_eq!(
        container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true)
    );
    assert!(
        spec.template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| a.contains_key(stateless_operator::build::CONFIG_HASH_ANNOTATION)),
        "pod template carries the config hash"
    );
    let service = services.get("web").await.expect("Service web");
    assert!(owned_by(&service, &app));
    assert_eq!(
        service
            .spec
            .as_ref()
            .and_then(|s| s.session_affinity.as_deref()),
        Some("None")
    );
    let hpa = ns
        .api::<HorizontalPodAutoscaler>()
        .get("web")
        .await
        .expect("HPA web");
    assert!(owned_by(&hpa, &app));
    let hpa_spec = hpa.spec.expect("hpa spec");
    assert_eq!(
        (hpa_spec.min_replicas, hpa_spec.max_replicas),
        (Some(2), 10)
    );
    assert_eq!(hpa_spec.scale_target_ref.name, "web");
    assert!(owned_by(
        &ns.api::<PodDisruptionBudget>()
            .get("web")
            .await
            .expect("PDB web"),
        &app
    ));
    for kind_and_owner in [
        owned_by(
            &ns.api::<Secret>()
                .get("web-redis")
                .await
                .expect("Secret web-redis"),
            &app,
        ),
        owned_by(
            &ns.api::<ConfigMap>()
                .get("web-redis")
                .await
                .expect("ConfigMap web-redis"),
            &app,
        ),
        owned_by(
            &deployments
                .get("web-redis")
                .await
                .expect("Deployment web-redis"),
            &app,
        ),
        owned_by(
            &services.get("web-redis").await.expect("Service web-redis"),
            &app,
        ),
        owned_by(
            &ns.api::<NetworkPolicy>()
                .get("web-redis")
                .await
                .expect("NetworkPolicy web-redis"),
            &app,
        ),
    ] {
        assert!(
            kind_and_owner,
            "managed Redis objects are controlled by the app"
        );
    }
    let status = app.status.clone().expect("status");
    let store = status.session_store.expect("session store status");
    assert_eq!(store.secret_name.as_deref(), Some("web-redis"));
    assert_eq!(store.service_name.as_deref(), Some("web-redis"));
    assert!(condition(&app, "SessionStoreReady").is_some_and(|(s, _, _)| s == "True"));
    // The status never carries the password.
    let password = ns
        .api::<Secret>()
        .get("web-redis")
        .await
        .expect("secret")
        .data
        .expect("data")["password"]
        .0
        .clone();
    let status_json = serde_json::to_string(&app.status).expect("status json");
    assert!(!status_json.contains(&String::from_utf8_lossy(&password).to_string()));
    // The HPA raised the Deployment to min replicas; the operator does not own spec.replicas.
    assert!(
        deployment
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| m.manager.as_deref() == Some("stateless-operator"))
            .all(|m| !serde_json::to_string(&m.fields_v1)
                .unwrap_or_default()
                .contains("f:replicas")),
        "the operator never owns spec.replicas"
    );

    // Idle: after convergence, no write requests at all — periodic resyncs (every 10 s here) included.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = audited_writes(&ns.name);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = audited_writes(&ns.name);
    assert_eq!(
        after[before.len()..].to_vec(),
        Vec::<String>::new(),
        "writes while idle"
    );

    // The HPA (played by the test) scales the Deployment: the operator leaves it.
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("scale");
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": "1"}}})),
    )
    .await
    .expect("poke the app");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let replicas = deployments
        .get("web")
        .await
        .expect("deployment")
        .spec
        .and_then(|s| s.replicas);
    assert_eq!(replicas, Some(4), "replicas set by the autoscaler stay");

    // A hand edit of an owned field is reverted.
    services
        .patch(
            "web",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"sessionAffinity": "ClientIP"}}),
            ),
        )
        .await
        .expect("hand edit");
    wait_until(WAIT, "sessionAffinity reverted to None", || async {
        services
            .get("web")
            .await
            .ok()
            .and_then(|s| s.spec)
            .and_then(|s| s.session_affinity)
            .as_deref()
            == Some("None")
    })
    .await;

    // A deleted child is restored.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete Service");
    wait_until(WAIT, "Service web restored", || async {
        services
            .get_opt("web")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.metadata.deletion_timestamp.is_none())
    })
    .await;

    // An image change rolls out and the app is Ready again at the new generation.
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": "ghcr.io/stateless-dev/session-demo:0.1.1"}})),
    )
    .await
    .expect("change image");
    wait_until(WAIT, "Deployment template on the new image", || async {
        deployments
            .get("web")
            .await
            .ok()
            .and_then(|d| d.spec)
            .is_some_and(|s| {
                s.template.spec.is_some_and(|p| {
                    p.containers[0].image.as_deref()
                        == Some("ghcr.io/stateless-dev/session-demo:0.1.1")
                })
            })
    })
    .await;
    let app = wait_ready(&apps, "web", WAIT).await;
    assert_eq!(
        app.status.as_ref().and_then(|s| s.observed_generation),
        app.metadata.generation
    );

    // Events for real transitions exist (Created, Ready), not one per reconcile.
    let events = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("events");
    let reasons: Vec<String> = events
        .items
        .iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some("web")
                && e.involved_object.kind.as_deref() == Some("StatelessApp")
        })
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(reasons.iter().any(|r| r == "Created"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "Ready"), "{reasons:?}");

    // managed -> none prunes every managed Redis object.
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"sessionStore": {"type": "none"}}})),
    )
    .await
    .expect("switch to none");
    wait_until(WAIT, "managed Redis objects pruned", || async {
        let gone = |r: Result<Option<()>, kube::Error>| matches!(r, Ok(None));
        gone(
            deployments
                .get_opt("web-redis")
                .await
                .map(|o| o.map(|_| ())),
        ) && gone(services.get_opt("web-redis").await.map(|o| o.map(|_| ())))
            && gone(
                ns.api::<Secret>()
                    .get_opt("web-redis")
                    .await
                    .map(|o| o.map(|_| ())),
            )
            && gone(
                ns.api::<ConfigMap>()
                    .get_opt("web-redis")
                    .await
                    .map(|o| o.map(|_| ())),
            )
            && gone(
                ns.api::<NetworkPolicy>()
                    .get_opt("web-redis")
                    .await
                    .map(|o| o.map(|_| ())),
            )
    })
    .await;
    let deployment = deployments.get("web").await.expect("deployment");
    let env = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].env.clone().unwrap_or_default());
    assert!(
        !env.unwrap_or_default()
            .iter()
            .any(|e| e.name == "REDIS_URL"),
        "no session URL with type none"
    );

    // Deleting the app garbage-collects every child.
    apps.delete("web", &DeleteParams::foreground())
        .await
        .expect("delete app");
    wait_until(WAIT, "children garbage-collected", || async {
        deployments
            .list(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
            && services
                .list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
            && ns
                .api::<HorizontalPodAutoscaler>()
                .list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
            && ns
                .api::<PodDisruptionBudget>()
                .list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
    })
    .await;
}

#[tokio::test]
async fn full_example_converges() {
    let (client, ns, _operator) = setup("ctrl-full").await;
    let objects = load_yaml("examples/full.yaml");
    apply_objects(&client, &ns.name, &objects).await;
    let name = app_name_in(&objects);
    let apps = ns.api::<StatelessApp>();
    let app = wait_ready(&apps, &name, WAIT).await;
    assert!(condition(&app, "SessionStoreReady").is_some_and(|(s, _, _)| s == "True"));

    // Changing a referenced ConfigMap changes the pod-template hash, so pods roll.
    let deployments = ns.api::<Deployment>();
    let hash = |d: Deployment| {
        d.spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| {
                a.get(stateless_operator::build::CONFIG_HASH_ANNOTATION)
                    .cloned()
            })
    };
    let before = hash(deployments.get(&name).await.expect("deployment"));
    assert!(before.is_some());
    // The hash is an HMAC under the operator's key Secret, not a plain digest.
    let at = stateless_operator::controller::config_hash::KeySecret::default();
    let key_secret = Api::<Secret>::namespaced(client.clone(), &at.namespace)
        .get(&at.name)
        .await
        .expect("the config-hash key Secret exists");
    assert_eq!(key_secret.immutable, Some(true));
    let key = key_secret
        .data
        .as_ref()
        .and_then(|d| d.get("key"))
        .map(|k| k.0.clone())
        .expect("key");
    assert_eq!(key.len(), 32);
    use stateless_operator::controller::config_hash::{HashKey, of_referenced_config};
    use stateless_operator::controller::observe::Content;
    use stateless_operator::crd::ConfigKind;
    let keyed = |key: Vec<u8>| {
        let (client, app, ns) = (client.clone(), app.clone(), ns.name.clone());
        async move {
            let key = HashKey::from_bytes(&key);
            let mut referenced = Vec::new();
            for reference in app.referenced_config() {
                let content = match reference.kind {
                    ConfigKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), &ns)
                        .get_opt(&reference.name)
                        .await
                        .expect("read ConfigMap")
                        .map(|cm| Content::of_config_map(&key, cm)),
                    ConfigKind::Secret => Api::<Secret>::namespaced(client.clone(), &ns)
                        .get_opt(&reference.name)
                        .await
                        .expect("read Secret")
                        .map(|secret| Content::of_secret(&key, &secret)),
                };
                referenced.push((reference, content.map(std::sync::Arc::new)));
            }
            of_referenced_config(&key, &referenced)
        }
    };
    assert_eq!(before.as_deref(), Some(keyed(key.clone()).await.as_str()));
    assert_ne!(before.as_deref(), Some(keyed(vec![0; 32]).await.as_str()));
    let config_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .and_then(|o| o["metadata"]["name"].as_str())
        .expect("full.yaml has a ConfigMap the app references");
    ns.api::<ConfigMap>()
        .patch(
            config_map,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"CHANGED_BY_TEST": "1"}})),
        )
        .await
        .expect("change ConfigMap");
    wait_until(WAIT, "config hash changed", || async {
        deployments.get(&name).await.ok().map(hash) != Some(before.clone())
    })
    .await;
}

#[tokio::test]
async fn missing_external_secret_is_reported_then_recovers() {
    let (client, ns, _operator) = setup("ctrl-external").await;
    let mut app = basic_app("ext");
    app["spec"]["sessionStore"] =
        json!({"type": "external", "external": {"secretRef": {"name": "sessions", "key": "url"}}});
    apply_objects(&client, &ns.name, &[app]).await;
    let apps = ns.api::<StatelessApp>();
    wait_until(
        WAIT,
        "Ready=False with reason ExternalSecretNotFound",
        || async {
            apps.get("ext")
                .await
                .ok()
                .and_then(|a| condition(&a, "Ready"))
                .is_some_and(|(s, reason, message)| {
                    s == "False"
                        && reason == "ExternalSecretNotFound"
                        && message.contains("sessions")
                })
        },
    )
    .await;
    let events = ns.api::<Event>();
    wait_until(WAIT, "a Warning Event about the missing Secret", || async {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("ExternalSecretNotFound")
            })
        })
    })
    .await;
    // Backoff, not a hot loop: a handful of attempts, not hundreds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let warnings: i32 = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ExternalSecretNotFound"))
        .map(|e| e.count.unwrap_or(1) + e.series.as_ref().and_then(|s| s.count).unwrap_or(0))
        .sum();
    assert!(warnings <= 2, "one Warning per transition, got {warnings}");
    assert!(
        ns.api::<Deployment>()
            .get_opt("ext")
            .await
            .expect("get")
            .is_none(),
        "nothing half-built"
    );

    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("sessions".into()),
            ..Default::default()
        },
        string_data: Some(
            [(
                "url".to_string(),
                "redis://sessions.example:6379/0".to_string(),
            )]
            .into(),
        ),
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
    let app = wait_ready(&apps, "ext", WAIT).await;
    let store = app
        .status
        .and_then(|s| s.session_store)
        .expect("session store status");
    assert_eq!(
        (store.secret_name.as_deref(), store.service_name),
        (Some("sessions"), None)
    );
    let deployment = ns.api::<Deployment>().get("ext").await.expect("deployment");
    let env = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod")
        .containers[0]
        .env
        .clone()
        .unwrap_or_default();
    let url = env
        .iter()
        .find(|e| e.name == "REDIS_URL")
        .and_then(|e| e.value_from.clone())
        .and_then(|v| v.secret_key_ref);
    assert_eq!(
        url.map(|r| (r.name, r.key)),
        Some(("sessions".to_string(), "url".to_string()))
    );
}

#[tokio::test]
async fn invalid_specs_are_rejected_with_actionable_messages() {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "ctrl-invalid").await;
    let apps: Api<StatelessApp> = ns.api();
    let cases = [
        (json!({"replicas": {"min": 0, "max": 3}}), "min"),
        (json!({"replicas": {"min": 5, "max": 3}}), "max"),
        (json!({"sessionStore": {"type": "external"}}), "secretRef"),
        (
            json!({"autoscaling": {"targetCPUUtilizationPercentage": 150}}),
            "between 1 and 100",
        ),
        (json!({"service": {"port": 70000}}), "between 1 and 65535"),
        (
            json!({"volumes": [{"name": "data", "hostPath": {"path": "/srv/shop"}}]}),
            "spec.volumes must not use hostPath, gitRepo: a node directory pins the app",
        ),
        (
            json!({"volumes": [{"name": "media", "persistentVolumeClaim": {"claimName": "media"}}]}),
            "or waive with spec.policy.allowPersistentVolumes.reason",
        ),
        (
            json!({"volumes": [{"name": "share", "nfs": {"server": "nfs.example", "path": "/x"}}],
                   "policy": {"allowPersistentVolumes": {"reason": ""}}}),
            "reason",
        ),
        (
            json!({"volumes": [{"name": "data", "hostPath": {"path": "/srv/shop"}}],
                   "policy": {"allowPersistentVolumes": {"reason": "legacy"}}}),
            "must not use hostPath, gitRepo",
        ),
        (
            json!({"objectStorage": {"bucket": "Uploads_2024", "credentials": {"secretName": "s3"}}}),
            "spec.objectStorage.bucket",
        ),
        (
            json!({"objectStorage": {"bucket": "uploads", "endpoint": "s3.example.com",
                   "credentials": {"secretName": "s3"}}}),
            "objectStorage.endpoint must be a URL starting with https:// or http://",
        ),
        (
            json!({"identity": {"jwt": {"rotationPeriod": "30m"}}}),
            "identity.jwt.rotationPeriod must be at least 1h",
        ),
        (
            json!({"identity": {"jwt": {"rotationPeriod": "9000h"}}}),
            "identity.jwt.rotationPeriod must be at most 8760h",
        ),
        (
            json!({"identity": {"jwt": {"tokenLifetime": "0s"}}}),
            "identity.jwt.tokenLifetime must be at least 1s",
        ),
        (
            json!({"identity": {"jwt": {"rotationPeriod": "2h", "tokenLifetime": "3h"}}}),
            "identity.jwt.tokenLifetime must not be longer than rotationPeriod",
        ),
        (
            json!({"identity": {"jwt": {"rotationPeriod": "30d"}}}),
            "spec.identity.jwt.rotationPeriod",
        ),
        (
            json!({"schedules": [{"name": "nightly", "schedule": "every night"}]}),
            "schedules[].schedule must have five fields",
        ),
        (
            json!({"schedules": [{"name": "nightly", "schedule": "CRON_TZ=UTC 0 3 * * *"}]}),
            "put the time zone in schedules[].timeZone",
        ),
        (
            json!({"schedules": [{"name": "Nightly_Report", "schedule": "0 3 * * *"}]}),
            "spec.schedules[0].name",
        ),
        (
            json!({"schedules": [{"name": "nightly", "schedule": "0 3 * * *"},
                                 {"name": "nightly", "schedule": "0 4 * * *"}]}),
            "Duplicate value",
        ),
        (
            json!({"schedules": [{"name": "nightly", "schedule": "0 3 * * *", "backoffLimit": 50}]}),
            "schedules[].backoffLimit must be between 0 and 10",
        ),
        (
            json!({"workers": [{"name": "redis"}]}),
            "workers[].name must not be redis",
        ),
        (
            json!({"workers": [{"name": "mailer"}, {"name": "mailer"}]}),
            "Duplicate value",
        ),
        (
            json!({"workers": [{"name": "mailer", "replicas": {"min": 3, "max": 2}}]}),
            "spec.workers[0].replicas: Invalid value",
        ),
        (
            json!({"workers": [{"name": "mailer", "autoscaling": {"targetCPUUtilizationPercentage": 0}}]}),
            "autoscaling.targetCPUUtilizationPercentage must be between 1 and 100",
        ),
    ];
    for (patch, expected) in cases {
        let mut app = basic_app("bad");
        for (k, v) in patch.as_object().expect("object") {
            app["spec"][k] = v.clone();
        }
        let obj: StatelessApp = serde_json::from_value(app).expect("typed app");
        let err = apps
            .create(&PostParams::default(), &obj)
            .await
            .expect_err("rejected");
        let message = err.to_string();
        assert!(
            message.contains(expected),
            "{patch}: expected {expected:?} in {message}"
        );
    }
    let mut long = basic_app(&"a".repeat(stateless_operator::crd::MAX_NAME_LENGTH + 1));
    long["metadata"]["namespace"] = json!(ns.name);
    let obj: StatelessApp = serde_json::from_value(long).expect("typed app");
    let err = apps
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("long name rejected");
    assert!(
        err.to_string()
            .contains(&stateless_operator::crd::MAX_NAME_LENGTH.to_string()),
        "{err}"
    );
    // App and schedule name together name the CronJob, whose Jobs add 11.
    let mut long_schedule = basic_app(&"a".repeat(40));
    long_schedule["spec"]["schedules"] =
        json!([{"name": "nightly-report", "schedule": "0 3 * * *"}]);
    let obj: StatelessApp = serde_json::from_value(long_schedule).expect("typed app");
    let err = apps
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("too long a CronJob name rejected");
    assert!(
        err.to_string()
            .contains("metadata.name and a schedules[].name together must be at most 51"),
        "{err}"
    );
    // App and worker name together name the worker's Deployment, a DNS label.
    let mut long_worker = basic_app(&"a".repeat(stateless_operator::crd::MAX_NAME_LENGTH));
    long_worker["spec"]["workers"] = json!([{"name": "thumbnailer"}]);
    let obj: StatelessApp = serde_json::from_value(long_worker).expect("typed app");
    let err = apps
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("too long a worker Deployment name rejected");
    assert!(
        err.to_string()
            .contains("metadata.name and a workers[].name together must be at most 62"),
        "{err}"
    );
    assert!(
        apps.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // The waiver admits claims (the finding is then reported as waived).
    let mut waived = basic_app("media");
    waived["spec"]["volumes"] =
        json!([{"name": "media", "persistentVolumeClaim": {"claimName": "media"}}]);
    waived["spec"]["policy"] =
        json!({"allowPersistentVolumes": {"reason": "media until the S3 move"}});
    let obj: StatelessApp = serde_json::from_value(waived).expect("typed app");
    apps.create(&PostParams::default(), &obj)
        .await
        .expect("a waived claim is admitted");
}

/// The StatelessnessViolation Events of a namespace: each one's message and
/// how often it happened (its count, plus its series'), in list order.
async fn violation_events(events: &Api<Event>) -> Vec<(String, i32)> {
    events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("StatelessnessViolation"))
        .map(|e| {
            (
                e.message.unwrap_or_default(),
                e.count.unwrap_or(1) + e.series.and_then(|s| s.count).unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test]
async fn violations_are_reported_waived_and_enforced() {
    let (client, ns, operator) = setup("ctrl-rules").await;
    let apps = ns.api::<StatelessApp>();
    let mut app = basic_app("shop");
    app["spec"]["policy"] = json!({"mode": "Warn"});
    apply_objects(&client, &ns.name, &[app]).await;
    let app = wait_ready(&apps, "shop", WAIT).await;
    assert_eq!(
        condition(&app, "Compliant").map(|(s, r, _)| (s, r)),
        Some(("True".to_string(), "NoViolations".to_string()))
    );

    // Someone adds a sticky Service in front of the app's pods.
    let sticky = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sticky"},
        "spec": {"selector": {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/component": "app"},
                 "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 8080}]}});
    apply_objects(&client, &ns.name, std::slice::from_ref(&sticky)).await;
    wait_until(WAIT, "Compliant=False listing session-affinity", || async {
        apps.get("shop").await.ok().is_some_and(|a| {
            let status = a.status.clone().unwrap_or_default();
            condition(&a, "Compliant")
                .is_some_and(|(s, r, _)| s == "False" && r == "ViolationsFound")
                && status.violation_count == 1
                && status.violations.iter().any(|v| {
                    v.rule == "session-affinity"
                        && v.kind == "Service"
                        && v.name == "sticky"
                        && v.path == "spec.sessionAffinity"
                })
        })
    })
    .await;
    let metrics = operator.metrics.encode().expect("metrics");
    assert!(
        metrics.contains(&format!(
            "stateless_violations{{namespace=\"{}\",app=\"shop\",rule=\"session-affinity\"}} 1",
            ns.name
        )),
        "{metrics}"
    );
    // One Warning Event for the new finding, not one per reconcile.
    apps.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": "1"}}})),
    )
    .await
    .expect("poke");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let found = violation_events(&ns.api::<Event>()).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, 1, "{found:?}");
    assert!(
        found[0].0.contains("session-affinity") && found[0].0.contains("sticky"),
        "{found:?}"
    );

    // A waiver on the Service is honoured and reported as waived.
    let mut waived = sticky.clone();
    waived["metadata"]["annotations"] = json!({"stateless.dev/allow": "session-affinity",
        "stateless.dev/allow-reason": "legacy SOAP clients, removal tracked in TICKET-1"});
    apply_objects(&client, &ns.name, &[waived]).await;
    wait_until(WAIT, "waived violation, Compliant=True", || async {
        apps.get("shop").await.ok().is_some_and(|a| {
            let status = a.status.clone().unwrap_or_default();
            condition(&a, "Compliant")
                .is_some_and(|(s, _, m)| s == "True" && m.contains("1 waived"))
                && status.violation_count == 0
                && status
                    .violations
                    .iter()
                    .any(|v| v.rule == "session-affinity" && v.waived == Some(true))
        })
    })
    .await;

    // Enforce: a violating spec change is not rolled out; the last compliant Deployment stays.
    let deployments = ns.api::<Deployment>();
    let image = |d: Deployment| {
        d.spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.containers[0].image.clone())
    };
    let before = image(deployments.get("shop").await.expect("deployment"));
    apps.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {
            "policy": {"mode": "Enforce"},
            "image": "ghcr.io/stateless-dev/session-demo:0.1.1",
            "env": [{"name": "SESSION_DRIVER", "value": "file"}]
        }})),
    )
    .await
    .expect("violating change");
    wait_until(WAIT, "Compliant=False RolloutBlocked", || async {
        apps.get("shop")
            .await
            .ok()
            .and_then(|a| condition(&a, "Compliant"))
            .is_some_and(|(s, r, m)| {
                s == "False" && r == "RolloutBlocked" && m.contains("in-memory-session")
            })
    })
    .await;
    assert_eq!(
        image(deployments.get("shop").await.expect("deployment")),
        before,
        "not rolled out"
    );

    // Fixing the spec lets the change roll out.
    apps.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"env": null}})),
    )
    .await
    .expect("fix");
    wait_until(WAIT, "new image rolled out once compliant", || async {
        deployments.get("shop").await.ok().map(image)
            == Some(Some("ghcr.io/stateless-dev/session-demo:0.1.1".to_string()))
    })
    .await;
    let app = wait_ready(&apps, "shop", WAIT).await;
    assert_eq!(
        condition(&app, "Compliant").map(|c| c.0),
        Some("True".to_string())
    );
}

/// A stand-in for Istio's DestinationRule CRD: the operator reads it untyped.
async fn install_destination_rule_crd(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "destinationrules.networking.istio.io"},
        "spec": {"group": "networking.istio.io", "scope": "Namespaced",
            "names": {"plural": "destinationrules", "singular": "destinationrule", "kind": "DestinationRule"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .expect("CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "destinationrules.networking.istio.io",
        &PatchParams::apply("stateless-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply DestinationRule CRD");
    wait_crd_established(client, "destinationrules.networking.istio.io").await;
}

#[tokio::test]
async fn istio_destination_rules_are_watched_where_istio_is_installed() {
    let client = client().await;
    ensure_crd(&client).await;
    install_destination_rule_crd(&client).await;
    let ns = TestNamespace::new(&client, "ctrl-istio").await;
    // A resync far beyond the test: only the DestinationRule watch can trigger the re-check.
    let _operator = Operator::start_with_resync(&client, &ns.name, Duration::from_secs(3600));
    let apps = ns.api::<StatelessApp>();
    apply_objects(&client, &ns.name, &[basic_app("mesh")]).await;
    wait_ready(&apps, "mesh", WAIT).await;

    let rule = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "mesh-sticky"},
        "spec": {"host": format!("mesh.{}.svc.cluster.local", ns.name),
                 "trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": true}}}}});
    apply_objects(&client, &ns.name, &[rule]).await;
    wait_until(WAIT, "sticky DestinationRule reported", || async {
        apps.get("mesh")
            .await
            .ok()
            .and_then(|a| a.status)
            .is_some_and(|s| {
                s.violations.iter().any(|v| {
                    v.rule == "sticky-ingress"
                        && v.kind == "DestinationRule"
                        && v.name == "mesh-sticky"
                })
            })
    })
    .await;
}

/// A rollout is routine (a Normal Event, no Warning), and a deleted app
/// leaves no `stateless_violations` series behind.
#[tokio::test]
async fn rollouts_warn_nobody_and_deleted_apps_leave_no_series() {
    let (client, ns, operator) = setup("ctrl-events").await;
    let apps = ns.api::<StatelessApp>();
    let mut app = basic_app("cart");
    app["spec"]["env"] = json!([{"name": "SESSION_DRIVER", "value": "file"}]);
    apply_objects(&client, &ns.name, &[app]).await;
    wait_ready(&apps, "cart", WAIT).await;
    let series = format!("namespace=\"{}\",app=\"cart\"", ns.name);
    let metrics = operator.metrics.encode().expect("metrics");
    assert!(
        metrics.contains(&format!(
            "stateless_violations{{{series},rule=\"in-memory-session\"}} 1"
        )),
        "{metrics}"
    );

    apps.patch(
        "cart",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"image": "ghcr.io/stateless-dev/session-demo:0.1.1"}})),
    )
    .await
    .expect("image change");
    let events = ns.api::<Event>();
    let seen = || async {
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    wait_until(
        WAIT,
        "a Normal RollingOut Event, then Ready again",
        || async {
            seen()
                .await
                .contains(&("Normal".to_string(), "RollingOut".to_string()))
        },
    )
    .await;
    wait_ready(&apps, "cart", WAIT).await;
    let warnings: Vec<_> = seen()
        .await
        .into_iter()
        .filter(|(t, _)| t == "Warning")
        .collect();
    assert!(warnings.is_empty(), "routine rollout warned: {warnings:?}");

    apps.delete("cart", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until(WAIT, "the deleted app's series gone", || async {
        !operator
            .metrics
            .encode()
            .expect("metrics")
            .contains(&series)
    })
    .await;
}

/// Sum of a counter family in the operator's metrics text.
fn counter(metrics: &stateless_operator::metrics::Metrics, family: &str, labels: &str) -> f64 {
    let text = metrics.encode().expect("metrics encode");
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}_total")) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_converged_app_is_resynced_without_a_single_request() {
    use stateless_operator::client::RequestClass;
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "ctrl-idle").await;
    // The operator's own client, which counts every request it sends; a
    // resync every second, so many happen in a short window.
    let metrics = std::sync::Arc::new(stateless_operator::metrics::Metrics::new());
    let counted = stateless_operator::client::build(config().await, metrics.api_requests.clone())
        .expect("operator client");
    let _operator = Operator::start_with_client(
        &counted,
        metrics.clone(),
        Operator::settings(&ns.name, Duration::from_secs(1)),
    );
    // The full example: managed Redis, a referenced ConfigMap and Secret,
    // Service, HPA, PDB and NetworkPolicy, all observed on every resync.
    let objects: Vec<_> = load_yaml("examples/full.yaml")
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .collect();
    apply_objects(&client, &ns.name, &objects).await;
    let name = app_name_in(&objects);
    wait_ready(&ns.api::<StatelessApp>(), &name, WAIT).await;

    // Once converged (the kwok pods' status settles within seconds), a
    // window of resyncs must send no read and no write: only the watches,
    // already open, carry anything.
    let window = Duration::from_secs(5);
    let snapshot = || {
        (
            metrics.api_requests.get(RequestClass::Read),
            metrics.api_requests.get(RequestClass::Write),
            counter(&metrics, "stateless_reconciliations", "result=\"ok\""),
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (reads, writes, reconciles) = snapshot();
        tokio::time::sleep(window).await;
        let (reads_after, writes_after, reconciles_after) = snapshot();
        let resyncs = reconciles_after - reconciles;
        eprintln!(
            "idle window of {window:?}: {resyncs} reconciles, {} reads, {} writes",
            reads_after - reads,
            writes_after - writes
        );
        if resyncs >= 3.0 && reads_after == reads && writes_after == writes {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no window of {window:?} with at least 3 resyncs and no request: the last had {resyncs} reconciles, {} reads and {} writes",
            reads_after - reads,
            writes_after - writes
        );
    }
    assert!(
        metrics.api_requests.get(RequestClass::Read) > 0,
        "the counting client did count (the initial lists)"
    );
}

/// A repeated Event continues its series (one object, count 2); the same
/// reason with another note is an Event of its own.
#[tokio::test]
async fn a_repeated_event_is_a_series_and_another_note_a_new_event() {
    use kube::runtime::events::{Event as Published, EventType};
    use stateless_operator::controller::recorder::{EventRecorder, Published as Sent};

    let client = client().await;
    let ns = TestNamespace::new(&client, "ctrl-recorder").await;
    let recorder = EventRecorder::new(client.clone(), "stateless-operator-test", None);
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some(ns.name.clone()),
        name: Some("subject".into()),
        ..Default::default()
    };
    let event = |note: &str| Published {
        type_: EventType::Normal,
        reason: "Updated".into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let first = recorder
        .publish(&event("changed Service"), &regarding)
        .await;
    let again = recorder
        .publish(&event("changed Service"), &regarding)
        .await;
    let other = recorder
        .publish(&event("changed Deployment"), &regarding)
        .await;
    assert_eq!(first.expect("create"), Sent::Created);
    assert_eq!(again.expect("patch"), Sent::Continued(2));
    assert_eq!(other.expect("create"), Sent::Created);

    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let mut listed: Vec<(String, Option<i32>)> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .map(|e| (e.note.unwrap_or_default(), e.series.map(|s| s.count)))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("changed Deployment".to_string(), None),
            ("changed Service".to_string(), Some(2)),
        ]
    );
}

/// `spec.objectStorage`: a missing credentials Secret, then a missing key,
/// each a Ready condition that says what to create; once both keys are there
/// the pods get the bucket and the keys (from the Secret, by reference), and
/// new keys in the Secret roll them.
#[tokio::test]
async fn object_storage_credentials_are_checked_then_injected() {
    let (client, ns, _operator) = setup("ctrl-s3").await;
    let mut app = basic_app("files");
    app["spec"]["sessionStore"] = json!({"type": "none"});
    app["spec"]["objectStorage"] = json!({
        "bucket": "files-uploads",
        "endpoint": "https://s3.example.com",
        "region": "eu-west-1",
        "credentials": {"secretName": "files-s3"}
    });
    apply_objects(&client, &ns.name, &[app]).await;
    let apps = ns.api::<StatelessApp>();
    let ready_reason = |want: &'static str, text: &'static str| {
        let apps = apps.clone();
        async move {
            wait_until(WAIT, &format!("Ready=False with reason {want}"), || async {
                apps.get("files")
                    .await
                    .ok()
                    .and_then(|a| condition(&a, "Ready"))
                    .is_some_and(|(s, reason, message)| {
                        s == "False" && reason == want && message.contains(text)
                    })
            })
            .await;
        }
    };
    ready_reason("ObjectStorageSecretNotFound", "files-s3").await;
    let deployments = ns.api::<Deployment>();
    assert!(
        deployments.get_opt("files").await.expect("get").is_none(),
        "no pods that could not start"
    );

    let secrets = ns.api::<Secret>();
    let secret = |data: &[(&str, &str)]| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("files-s3".into()),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    secrets
        .create(
            &PostParams::default(),
            &secret(&[("AWS_ACCESS_KEY_ID", "id-1")]),
        )
        .await
        .expect("create Secret");
    ready_reason("ObjectStorageSecretKeyMissing", "AWS_SECRET_ACCESS_KEY").await;

    let both = [
        ("AWS_ACCESS_KEY_ID", "id-1"),
        ("AWS_SECRET_ACCESS_KEY", "key-1"),
    ];
    secrets
        .replace("files-s3", &PostParams::default(), &secret(&both))
        .await
        .expect("replace Secret");
    wait_ready(&apps, "files", WAIT).await;
    let deployment = deployments.get("files").await.expect("Deployment");
    let template = serde_json::to_value(&deployment.spec.as_ref().expect("spec").template)
        .expect("serializes");
    let env = template["spec"]["containers"][0]["env"].clone();
    let find = |name: &str| {
        env.as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == name).cloned())
    };
    assert_eq!(
        find("AWS_SECRET_ACCESS_KEY"),
        Some(json!({"name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "files-s3", "key": "AWS_SECRET_ACCESS_KEY"}}}))
    );
    assert_eq!(
        find("S3_BUCKET"),
        Some(json!({"name": "S3_BUCKET", "value": "files-uploads"}))
    );
    assert_eq!(
        find("AWS_ENDPOINT_URL_S3"),
        Some(json!({"name": "AWS_ENDPOINT_URL_S3", "value": "https://s3.example.com"}))
    );
    assert!(
        !template.to_string().contains("key-1"),
        "no key value in the pod template"
    );

    // Rotated keys roll the pods: the template's config hash changes.
    let hash = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get("stateless.dev/config-hash").cloned())
    };
    let before = hash(&deployment);
    assert!(before.is_some(), "the template carries a config hash");
    let rotated = [
        ("AWS_ACCESS_KEY_ID", "id-2"),
        ("AWS_SECRET_ACCESS_KEY", "key-2"),
    ];
    secrets
        .replace("files-s3", &PostParams::default(), &secret(&rotated))
        .await
        .expect("rotate Secret");
    wait_until(WAIT, "a new config hash after the key rotation", || async {
        deployments
            .get("files")
            .await
            .is_ok_and(|d| hash(&d).is_some() && hash(&d) != before)
    })
    .await;
}

/// A token signed with the key set's active key, as a replica would sign it.
fn sign_with(keys: &Secret) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let file = |key: &str| secret_text(keys, key);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(file("kid"));
    let key = EncodingKey::from_ed_pem(file("signing-key.pem").as_bytes()).expect("an Ed25519 PEM");
    let claims = json!({"sub": "user-1", "exp": jsonwebtoken::get_current_timestamp() + 3600});
    encode(&header, &claims, &key).expect("signs")
}

/// Verify `token` as any replica would: by its kid, against the JWKS file.
fn verify_with(keys: &Secret, token: &str) -> Result<(), String> {
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet = serde_json::from_str(&secret_text(keys, "jwks.json")).expect("a JWKS");
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or(format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    decode::<serde_json::Value>(token, &key, &Validation::new(header.alg))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn secret_text(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("the Secret has key {key}"));
    String::from_utf8(bytes.0.clone()).expect("UTF-8")
}

fn signing_keys_status(app: &StatelessApp) -> Option<serde_json::Value> {
    let status = serde_json::to_value(app.status.as_ref()?).ok()?;
    Some(status.get("signingKeys")?.clone())
}

#[tokio::test]
async fn jwt_keys_are_created_rotated_and_retired_without_losing_a_live_token() {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "ctrl-jwt").await;
    let mut settings = Operator::settings(&ns.name, Duration::from_secs(300));
    settings.key_propagation = jiff::SignedDuration::from_secs(1);
    let operator = Operator::start_with_settings(&client, settings.clone());

    let mut app = basic_app("idp");
    app["spec"]["sessionStore"] = json!({"type": "none"});
    app["spec"]["identity"] = json!({"jwt": {"tokenLifetime": "4s"}});
    apply_objects(&client, &ns.name, &[app]).await;
    let apps = ns.api::<StatelessApp>();
    wait_ready(&apps, "idp", WAIT).await;
    let first = signing_keys_status(&apps.get("idp").await.expect("app")).expect("signingKeys");
    assert_eq!(first["secretName"], "idp-jwt");
    assert_eq!(first["algorithm"], "EdDSA");
    assert_eq!(first["retiredKeyIds"], json!([]));
    let (active, next) = (first["activeKeyId"].clone(), first["nextKeyId"].clone());
    assert_ne!(active, next);

    let secrets = ns.api::<Secret>();
    let keys = secrets.get("idp-jwt").await.expect("the key Secret");
    let app = apps.get("idp").await.expect("app");
    assert!(owned_by(&keys, &app), "the app owns its key Secret");
    assert_eq!(json!(secret_text(&keys, "kid")), active);
    let published: serde_json::Value =
        serde_json::from_str(&secret_text(&keys, "jwks.json")).expect("JWKS");
    let kids: Vec<_> = published["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(
        kids,
        vec![active.clone(), next.clone()],
        "active, then next"
    );
    assert!(
        published["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k.get("d").is_none()),
        "the JWKS holds public keys only"
    );
    let template = serde_json::to_value(
        &ns.api::<Deployment>()
            .get("idp")
            .await
            .expect("Deployment")
            .spec
            .expect("spec")
            .template,
    )
    .expect("serializes");
    assert_eq!(
        template["spec"]["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == "stateless-jwt"))
            .map(|v| v["secret"]["secretName"].clone()),
        Some(json!("idp-jwt"))
    );
    assert!(template.to_string().contains("JWT_JWKS_FILE"), "{template}");
    assert!(
        !template
            .to_string()
            .contains(&secret_text(&keys, "signing-key.pem")),
        "no key in the pod template"
    );
    let token = sign_with(&keys);
    verify_with(&keys, &token).expect("a fresh token verifies");

    // A rotation on request: the next key signs, the old one stays
    // published for the token lifetime, so the token still verifies.
    apps.patch(
        "idp",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"stateless.dev/rotate-signing-keys": "leak-1"}}}),
        ),
    )
    .await
    .expect("annotate");
    wait_until(WAIT, "the next key signing", || async {
        apps.get("idp")
            .await
            .ok()
            .and_then(|a| signing_keys_status(&a))
            .is_some_and(|s| s["activeKeyId"] == next && s["retiredKeyIds"] == json!([active]))
    })
    .await;
    let rotated = secrets.get("idp-jwt").await.expect("the key Secret");
    assert_eq!(json!(secret_text(&rotated, "kid")), next);
    verify_with(&rotated, &token).expect("a token signed before the rotation verifies after it");
    verify_with(&rotated, &sign_with(&rotated)).expect("a token of the new key verifies");
    assert!(
        secrets
            .get_opt("idp-jwt-next")
            .await
            .expect("get")
            .is_none(),
        "the staged copy is removed once the Secret is replaced"
    );

    // After the token lifetime (and the propagation time) the old key goes.
    wait_until(WAIT, "the retired key unpublished", || async {
        apps.get("idp")
            .await
            .ok()
            .and_then(|a| signing_keys_status(&a))
            .is_some_and(|s| s["retiredKeyIds"] == json!([]))
    })
    .await;
    let later = secrets.get("idp-jwt").await.expect("the key Secret");
    let err = verify_with(&later, &token).expect_err("the old key no longer verifies");
    assert!(err.contains("not in the JWKS"), "{err}");

    // The same request again rotates nothing.
    let before = apps.get("idp").await.expect("app");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = apps.get("idp").await.expect("app");
    assert_eq!(
        signing_keys_status(&before).map(|s| s["activeKeyId"].clone()),
        signing_keys_status(&after).map(|s| s["activeKeyId"].clone())
    );

    // A replacement cut short between its delete and its create (the
    // operator killed there) loses no key: the staged copy is restored.
    drop(operator);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let current = secrets.get("idp-jwt").await.expect("the key Secret");
    let mut copy = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("idp-jwt-next".into()),
            labels: current.metadata.labels.clone(),
            annotations: current.metadata.annotations.clone(),
            owner_references: current.metadata.owner_references.clone(),
            ..Default::default()
        },
        data: current.data.clone(),
        ..Default::default()
    };
    copy.type_ = current.type_.clone();
    secrets
        .create(&PostParams::default(), &copy)
        .await
        .expect("stage a copy");
    secrets
        .delete("idp-jwt", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    let _operator = Operator::start_with_settings(&client, settings);
    wait_until(
        WAIT,
        "the key Secret restored from its staged copy",
        || async {
            secrets.get_opt("idp-jwt").await.ok().flatten().is_some()
                && secrets
                    .get_opt("idp-jwt-next")
                    .await
                    .is_ok_and(|s| s.is_none())
        },
    )
    .await;
    let restored = secrets.get("idp-jwt").await.expect("the key Secret");
    assert_eq!(
        restored.data, current.data,
        "the same keys, none regenerated"
    );
    assert_ne!(restored.metadata.uid, current.metadata.uid);

    // A Secret of that name that the app does not own is never taken over.
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "other-jwt"}, "stringData": {"kid": "mine"}}),
            )
            .expect("a Secret"),
        )
        .await
        .expect("create");
    let mut other = basic_app("other");
    other["spec"]["sessionStore"] = json!({"type": "none"});
    other["spec"]["identity"] = json!({"jwt": {}});
    apply_objects(&client, &ns.name, &[other]).await;
    wait_until(WAIT, "Ready=False with reason SecretConflict", || async {
        apps.get("other")
            .await
            .ok()
            .and_then(|a| condition(&a, "Ready"))
            .is_some_and(|(s, reason, message)| {
                s == "False" && reason == "SecretConflict" && message.contains("identity.jwt")
            })
    })
    .await;
    let untouched = secrets.get("other-jwt").await.expect("still there");
    assert_eq!(secret_text(&untouched, "kid"), "mine");

    // Without identity.jwt the keys go.
    apps.patch(
        "idp",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"identity": null}})),
    )
    .await
    .expect("patch");
    wait_until(WAIT, "the key Secret removed", || async {
        secrets.get_opt("idp-jwt").await.is_ok_and(|s| s.is_none())
            && apps
                .get("idp")
                .await
                .is_ok_and(|a| signing_keys_status(&a).is_none())
    })
    .await;
}

fn schedules_status(app: &StatelessApp) -> serde_json::Value {
    serde_json::to_value(app.status.as_ref().map(|s| s.schedules.clone())).expect("serializes")
}

#[tokio::test]
async fn schedules_become_cronjobs_refused_ones_are_reported_and_removed_ones_pruned() {
    let (client, ns, _operator) = setup("ctrl-cron").await;
    let mut app = basic_app("jobs");
    app["spec"]["schedules"] = json!([
        {"name": "report", "schedule": "0 3 * * *", "command": ["report"]},
        {"name": "sweep", "schedule": "@hourly", "concurrencyPolicy": "Replace",
         "suspend": true, "backoffLimit": 0},
    ]);
    apply_objects(&client, &ns.name, std::slice::from_ref(&app)).await;
    let apps = ns.api::<StatelessApp>();
    let cron_jobs = ns.api::<CronJob>();
    let live = wait_ready(&apps, "jobs", WAIT).await;

    let report = cron_jobs
        .get("jobs-report")
        .await
        .expect("CronJob jobs-report");
    assert!(owned_by(&report, &live));
    let spec = serde_json::to_value(report.spec.as_ref().expect("spec")).expect("serializes");
    assert_eq!(spec["schedule"], "0 3 * * *");
    assert_eq!(spec["concurrencyPolicy"], "Forbid", "Forbid by default");
    let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["command"], json!(["report"]));
    assert!(
        container["env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e["name"] == "REDIS_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == "jobs-redis")),
        "the job reaches the app's session store: {container}"
    );
    let sweep = cron_jobs
        .get("jobs-sweep")
        .await
        .expect("CronJob jobs-sweep");
    let sweep_spec = sweep.spec.as_ref().expect("spec");
    assert_eq!(sweep_spec.concurrency_policy.as_deref(), Some("Replace"));
    assert_eq!(sweep_spec.suspend, Some(true));
    wait_until(WAIT, "status.schedules lists both CronJobs", || async {
        apps.get("jobs").await.ok().map(|a| schedules_status(&a))
            == Some(json!([
                {"name": "report", "cronJobName": "jobs-report", "active": 0},
                {"name": "sweep", "cronJobName": "jobs-sweep", "active": 0},
            ]))
    })
    .await;
    // The job pods are not the web tier's: its Service and PDB select only
    // the app's pods, but its session store admits both.
    let job_labels = report
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|j| j.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .expect("job pod labels");
    let service = ns.api::<Service>().get("jobs").await.expect("Service");
    let selector = service
        .spec
        .and_then(|s| s.selector)
        .expect("Service selector");
    assert!(
        selector.iter().any(|(k, v)| job_labels.get(k) != Some(v)),
        "{selector:?} must not select job pods {job_labels:?}"
    );
    let policy = ns
        .api::<NetworkPolicy>()
        .get("jobs-redis")
        .await
        .expect("NetworkPolicy");
    let peer = serde_json::to_value(&policy).expect("serializes")["spec"]["ingress"][0]["from"][0]
        ["podSelector"]
        .clone();
    assert_eq!(peer["matchLabels"]["app.kubernetes.io/instance"], "jobs");
    assert_eq!(
        peer["matchExpressions"][0]["values"],
        json!(["app", "worker", "schedule"])
    );

    // A CronJob of the same name that the app does not control is never
    // taken over: Ready says which, and nothing else stops.
    let foreign: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "jobs-backup"},
        "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "backup:1"}]}}}}}
    }))
    .expect("CronJob");
    cron_jobs
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create a user's CronJob");
    let mut with_backup = app.clone();
    with_backup["spec"]["schedules"]
        .as_array_mut()
        .expect("schedules")
        .push(json!({"name": "backup", "schedule": "0 2 * * *"}));
    apply_objects(&client, &ns.name, std::slice::from_ref(&with_backup)).await;
    let not_ready = |reason: &'static str, text: &'static str| {
        let apps = apps.clone();
        async move {
            wait_until(WAIT, &format!("Ready=False, {reason}: {text}"), || async {
                apps.get("jobs")
                    .await
                    .ok()
                    .and_then(|a| condition(&a, "Ready"))
                    .is_some_and(|(s, r, m)| s == "False" && r == reason && m.contains(text))
            })
            .await;
        }
    };
    not_ready("ChildConflict", "jobs-backup").await;
    let untouched = cron_jobs
        .get("jobs-backup")
        .await
        .expect("the user's CronJob");
    assert!(untouched.owner_references().is_empty());
    assert_eq!(
        untouched
            .spec
            .and_then(|s| s.job_template.spec)
            .map(|j| j.template.spec.map(|p| p.containers[0].image.clone())),
        Some(Some(Some("backup:1".into())))
    );

    // A schedule the API server refuses (an unknown time zone) is reported
    // with its message, and the web tier stays as it was.
    let mut bad_zone = app.clone();
    bad_zone["spec"]["schedules"][0]["timeZone"] = json!("Mars/Olympus_Mons");
    apply_objects(&client, &ns.name, std::slice::from_ref(&bad_zone)).await;
    not_ready("ApiError", "Mars/Olympus_Mons").await;
    assert!(
        ns.api::<Deployment>()
            .get_opt("jobs")
            .await
            .expect("get")
            .is_some()
    );

    // A removed schedule's CronJob goes; the other stays, unchanged.
    let mut fewer = app.clone();
    fewer["spec"]["schedules"] = json!([app["spec"]["schedules"][0].clone()]);
    apply_objects(&client, &ns.name, std::slice::from_ref(&fewer)).await;
    wait_ready(&apps, "jobs", WAIT).await;
    wait_until(WAIT, "CronJob jobs-sweep pruned", || async {
        cron_jobs
            .get_opt("jobs-sweep")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    let kept = cron_jobs
        .get("jobs-report")
        .await
        .expect("jobs-report stays");
    assert_eq!(kept.metadata.uid, report.metadata.uid);
    assert!(
        cron_jobs
            .get_opt("jobs-backup")
            .await
            .expect("get")
            .is_some()
    );
    wait_until(WAIT, "status.schedules lists one", || async {
        apps.get("jobs").await.ok().map(|a| schedules_status(&a))
            == Some(json!([{"name": "report", "cronJobName": "jobs-report", "active": 0}]))
    })
    .await;
}

fn workers_status(app: &StatelessApp) -> serde_json::Value {
    serde_json::to_value(app.status.as_ref().map(|s| s.workers.clone())).expect("serializes")
}

fn replicas_of(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref().and_then(|s| s.replicas)
}

#[tokio::test]
async fn workers_become_scaled_deployments_conflicts_are_reported_and_removed_ones_pruned() {
    let (client, ns, _operator) = setup("ctrl-work").await;
    let mut app = basic_app("shop");
    app["spec"]["workers"] = json!([
        {"name": "mailer", "command": ["mail", "--consume"], "replicas": {"min": 1, "max": 3}},
        {"name": "thumbs", "image": "thumbs:2", "autoscaling": {"targetCPUUtilizationPercentage": 50},
         "resources": {"requests": {"cpu": "200m"}}},
    ]);
    apply_objects(&client, &ns.name, std::slice::from_ref(&app)).await;
    let apps = ns.api::<StatelessApp>();
    let deployments = ns.api::<Deployment>();
    let hpas = ns.api::<HorizontalPodAutoscaler>();
    let live = wait_ready(&apps, "shop", WAIT).await;

    let mailer = deployments
        .get("shop-mailer")
        .await
        .expect("Deployment shop-mailer");
    assert!(owned_by(&mailer, &live));
    let spec = serde_json::to_value(mailer.spec.as_ref().expect("spec")).expect("serializes");
    assert_eq!(
        spec["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "worker"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], app["spec"]["image"]);
    assert_eq!(container["command"], json!(["mail", "--consume"]));
    assert!(container.get("ports").is_none() && container.get("readinessProbe").is_none());
    assert!(
        container["env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e["name"] == "REDIS_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == "shop-redis")),
        "the worker reaches the app's session store: {container}"
    );
    let thumbs = deployments
        .get("shop-thumbs")
        .await
        .expect("Deployment shop-thumbs");
    let thumbs_container = &thumbs
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod")
        .containers[0];
    assert_eq!(thumbs_container.image.as_deref(), Some("thumbs:2"));

    // Each worker scales on its own HPA, which the operator never fights:
    // the Deployments get their replicas from the HPA, not from the apply.
    let mailer_hpa = hpas.get("shop-mailer").await.expect("HPA shop-mailer");
    assert!(owned_by(&mailer_hpa, &live));
    let hpa_spec = mailer_hpa.spec.as_ref().expect("spec");
    assert_eq!(hpa_spec.scale_target_ref.name, "shop-mailer");
    assert_eq!((hpa_spec.min_replicas, hpa_spec.max_replicas), (Some(1), 3));
    let thumbs_hpa = hpas.get("shop-thumbs").await.expect("HPA shop-thumbs");
    let thumbs_hpa = serde_json::to_value(thumbs_hpa.spec).expect("serializes");
    assert_eq!(
        (
            thumbs_hpa["minReplicas"].clone(),
            thumbs_hpa["maxReplicas"].clone()
        ),
        (json!(2), json!(10))
    );
    assert_eq!(
        thumbs_hpa["metrics"][0]["resource"]["target"]["averageUtilization"],
        50
    );
    // Each worker has its own PDB over its own pods: a drain takes one
    // worker pod at a time.
    let pdbs = ns.api::<PodDisruptionBudget>();
    let mailer_pdb = pdbs.get("shop-mailer").await.expect("PDB shop-mailer");
    assert!(owned_by(&mailer_pdb, &live));
    let mailer_pdb = serde_json::to_value(mailer_pdb.spec).expect("serializes");
    assert_eq!(mailer_pdb["maxUnavailable"], 1);
    assert_eq!(mailer_pdb["selector"], spec["selector"]);
    assert!(pdbs.get_opt("shop-thumbs").await.expect("get").is_some());
    wait_until(
        WAIT,
        "the HPA scales shop-thumbs to its minimum, 2",
        || async {
            deployments
                .get("shop-thumbs")
                .await
                .ok()
                .and_then(|d| replicas_of(&d))
                == Some(2)
        },
    )
    .await;
    wait_until(WAIT, "status.workers counts the ready pods", || async {
        apps.get("shop").await.ok().map(|a| workers_status(&a))
            == Some(json!([
                {"name": "mailer", "deploymentName": "shop-mailer", "replicas": 1, "readyReplicas": 1},
                {"name": "thumbs", "deploymentName": "shop-thumbs", "replicas": 2, "readyReplicas": 2},
            ]))
    })
    .await;

    // Worker pods are not the web tier's: its Service and PDB select only
    // the app's pods.
    let worker_labels = thumbs
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .expect("worker pod labels");
    let service = ns.api::<Service>().get("shop").await.expect("Service");
    let selector = service
        .spec
        .and_then(|s| s.selector)
        .expect("Service selector");
    assert!(
        selector
            .iter()
            .any(|(k, v)| worker_labels.get(k) != Some(v)),
        "{selector:?} must not select worker pods {worker_labels:?}"
    );
    let pdb = pdbs.get("shop").await.expect("PDB");
    let pdb_selector = pdb
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.match_labels)
        .expect("PDB selector");
    assert!(
        pdb_selector
            .iter()
            .any(|(k, v)| worker_labels.get(k) != Some(v))
    );

    // A Deployment of the same name that the app does not control is never
    // taken over: Ready says which, and the web tier and the others stay.
    let foreign: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "shop-indexer"},
        "spec": {"replicas": 1,
                 "selector": {"matchLabels": {"app": "indexer"}},
                 "template": {"metadata": {"labels": {"app": "indexer"}},
                              "spec": {"containers": [{"name": "c", "image": "indexer:1"}]}}}
    }))
    .expect("Deployment");
    deployments
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create a user's Deployment");
    let mut with_indexer = app.clone();
    with_indexer["spec"]["workers"]
        .as_array_mut()
        .expect("workers")
        .push(json!({"name": "indexer"}));
    apply_objects(&client, &ns.name, std::slice::from_ref(&with_indexer)).await;
    wait_until(WAIT, "Ready=False, ChildConflict: shop-indexer", || async {
        apps.get("shop")
            .await
            .ok()
            .and_then(|a| condition(&a, "Ready"))
            .is_some_and(|(s, r, m)| {
                s == "False" && r == "ChildConflict" && m.contains("shop-indexer")
            })
    })
    .await;
    let untouched = deployments
        .get("shop-indexer")
        .await
        .expect("the user's Deployment");
    assert!(untouched.owner_references().is_empty());
    assert_eq!(
        untouched
            .spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers[0].image.clone()),
        Some(Some("indexer:1".into()))
    );
    assert!(hpas.get_opt("shop-indexer").await.expect("get").is_none());
    assert!(pdbs.get_opt("shop-indexer").await.expect("get").is_none());

    // A removed worker's Deployment, HPA and PDB go; the other stays, unchanged.
    let mut fewer = app.clone();
    fewer["spec"]["workers"] = json!([app["spec"]["workers"][0].clone()]);
    apply_objects(&client, &ns.name, std::slice::from_ref(&fewer)).await;
    wait_ready(&apps, "shop", WAIT).await;
    wait_until(
        WAIT,
        "shop-thumbs's Deployment, HPA and PDB pruned",
        || async {
            deployments
                .get_opt("shop-thumbs")
                .await
                .ok()
                .flatten()
                .is_none()
                && hpas.get_opt("shop-thumbs").await.ok().flatten().is_none()
                && pdbs.get_opt("shop-thumbs").await.ok().flatten().is_none()
        },
    )
    .await;
    assert!(pdbs.get_opt("shop-mailer").await.expect("get").is_some());
    let kept = deployments
        .get("shop-mailer")
        .await
        .expect("shop-mailer stays");
    assert_eq!(kept.metadata.uid, mailer.metadata.uid);
    assert!(deployments.get_opt("shop").await.expect("get").is_some());
    assert!(
        deployments
            .get_opt("shop-redis")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        deployments
            .get_opt("shop-indexer")
            .await
            .expect("get")
            .is_some()
    );
    wait_until(WAIT, "status.workers lists one", || async {
        apps.get("shop").await.ok().map(|a| workers_status(&a))
            == Some(json!([
                {"name": "mailer", "deploymentName": "shop-mailer", "replicas": 1, "readyReplicas": 1},
            ]))
    })
    .await;
}

/// More findings than the status lists (50): a finding is warned about when
/// it is new (up to 10 Events per reconcile), and later reconciles add none,
/// because the Events are de-duplicated on the whole set, not on the capped
/// list.
#[tokio::test]
async fn more_findings_than_the_status_lists_are_warned_about_once() {
    let (client, ns, operator) = setup("ctrl-many").await;
    let apps = ns.api::<StatelessApp>();
    let mut app = basic_app("busy");
    app["spec"]["policy"] = json!({"mode": "Warn"});
    apply_objects(&client, &ns.name, &[app]).await;
    wait_ready(&apps, "busy", WAIT).await;

    const STICKY: usize = 55;
    let services: Vec<_> = (0..STICKY)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("sticky-{i:02}")},
                "spec": {"selector": {"app.kubernetes.io/instance": "busy", "app.kubernetes.io/component": "app"},
                         "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 8080}]}})
        })
        .collect();
    apply_objects(&client, &ns.name, &services).await;
    wait_until(WAIT, "violationCount 55, 50 listed", || async {
        apps.get("busy").await.ok().is_some_and(|a| {
            let status = a.status.clone().unwrap_or_default();
            status.violation_count == STICKY as i32
                && status.violations.len() == stateless_operator::crd::MAX_STATUS_VIOLATIONS
        })
    })
    .await;

    let events = ns.api::<Event>();
    // (Event objects, occurrences including their series) of the findings.
    let warned = || async {
        let found = violation_events(&events).await;
        (found.len(), found.iter().map(|(_, n)| n).sum::<i32>())
    };
    // The reconcile that wrote the count published its Events before the
    // status (status is the last step).
    let (objects, occurrences) = warned().await;
    assert!(
        (1..=STICKY).contains(&objects) && occurrences as usize == objects,
        "one Event per new finding, none repeated: {objects} Events, {occurrences} occurrences"
    );
    let reconciles = || {
        counter(
            &operator.metrics,
            "stateless_reconciliations",
            "result=\"ok\"",
        )
    };
    // Reconciles that see the same 55 findings.
    for poke in 0..3 {
        let before = reconciles();
        apps.patch(
            "busy",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": poke.to_string()}}})),
        )
        .await
        .expect("poke");
        wait_until(WAIT, "a reconcile after the poke", || async {
            reconciles() > before
        })
        .await;
    }
    assert_eq!(
        warned().await,
        (objects, occurrences),
        "reconciles that found the same 55 findings warned again"
    );
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// The managed Secret is replaced (the operator may not update Secrets) when
/// its password was rotated: the password is staged first, so a crash
/// between the delete and the create loses nothing.
#[tokio::test]
async fn a_rotated_session_store_password_survives_a_crash_mid_replacement() {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "ctrl-staged").await;
    let operator = Operator::start(&client, &ns.name);
    apply_objects(&client, &ns.name, &[basic_app("vault")]).await;
    let apps = ns.api::<StatelessApp>();
    let app = wait_ready(&apps, "vault", WAIT).await;
    let secrets = ns.api::<Secret>();
    let url_has = |password: String| {
        let secrets = secrets.clone();
        async move {
            wait_until(
                WAIT,
                &format!("vault-redis's url has {password}"),
                || async {
                    secrets.get("vault-redis").await.ok().is_some_and(|s| {
                        secret_value(&s, "password").as_deref() == Some(password.as_str())
                            && secret_value(&s, "url").is_some_and(|u| u.contains(&password))
                    })
                },
            )
            .await;
        }
    };

    // A rotation in place, the operator running: the Secret is replaced and
    // no staged copy stays behind.
    secrets
        .patch(
            "vault-redis",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": "rotated-by-the-user-1"}})),
        )
        .await
        .expect("rotate");
    url_has("rotated-by-the-user-1".into()).await;
    assert!(
        secrets
            .get_opt("vault-redis-next")
            .await
            .expect("get")
            .is_none()
    );

    let staged_copy = |password: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "vault-redis-next", "ownerReferences": [{
                "apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp", "name": "vault",
                "uid": app.metadata.uid, "controller": true}]},
            "stringData": {"password": password}
        }))
        .expect("Secret")
    };
    let staged_gone = || async {
        wait_until(WAIT, "the staged copy removed", || async {
            secrets
                .get_opt("vault-redis-next")
                .await
                .ok()
                .flatten()
                .is_none()
        })
        .await;
    };

    // A crash after the create: the Secret is whole, its staged copy left.
    // The next operator removes the copy (a second place with the password)
    // and leaves the Secret as it is.
    drop(operator);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let whole = secrets.get("vault-redis").await.expect("Secret");
    secrets
        .create(
            &PostParams::default(),
            &staged_copy("rotated-by-the-user-1"),
        )
        .await
        .expect("a leftover staged copy");
    let operator = Operator::start(&client, &ns.name);
    staged_gone().await;
    let after = secrets.get("vault-redis").await.expect("Secret");
    assert_eq!(after.metadata.uid, whole.metadata.uid);
    assert_eq!(after.data, whole.data);

    // The crash between the delete and the create: the staged copy written,
    // the Secret deleted. The next operator restores the password the user
    // chose instead of generating one.
    drop(operator);
    tokio::time::sleep(Duration::from_secs(2)).await;
    secrets
        .create(
            &PostParams::default(),
            &staged_copy("rotated-by-the-user-2"),
        )
        .await
        .expect("the staged copy");
    secrets
        .delete("vault-redis", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    let _operator = Operator::start(&client, &ns.name);
    url_has("rotated-by-the-user-2".into()).await;
    staged_gone().await;
    wait_ready(&apps, "vault", WAIT).await;
}
