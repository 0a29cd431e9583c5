//! The examples with real containers: on the local plane's real node the
//! app and its managed Redis start with the configuration, password and
//! security context the operator gives them and pass a real kubelet's probes;
//! Redis refuses clients without the password; an app pod reaches Redis
//! through the `REDIS_URL` it was given (Service DNS name and all), and the
//! app's sessions live there. `kubectl logs`, `exec` and `port-forward` work.
//!
//! The operator runs in this process here; `tests/e2e.rs` in the cluster mode
//! (`hack/e2e-local.sh`) runs the same examples under the operator's own image.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use stateless_operator::crd::StatelessApp;

use support::real_node::{self, kubectl_ok};
use support::{apply_objects, load_yaml, wait_ready};

const WAIT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn examples_run_for_real_and_reach_their_session_store() {
    let setup = real_node::setup("real").await;
    let (client, ns) = (setup.client.clone(), &setup.ns);
    let redis_image = setup.redis_image.clone();

    let mut objects = load_yaml("examples/basic.yaml");
    objects.extend(load_yaml("examples/full.yaml"));
    apply_objects(&client, &ns.name, &objects).await;
    let apps: Api<StatelessApp> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    wait_ready(&apps, "demo", WAIT).await;
    wait_ready(&apps, "demo-full", WAIT).await;

    // Real containers on the real node, ready by their real probes, never restarted.
    for (app, component, count) in [
        ("demo", "app", 2),
        ("demo", "session-store", 1),
        ("demo-full", "app", 2),
        ("demo-full", "session-store", 1),
        ("demo-full", "worker", 2),
    ] {
        let selector =
            format!("app.kubernetes.io/instance={app},app.kubernetes.io/component={component}");
        let running = real_node::wait_pods_running(&pods, &selector, count, WAIT).await;
        for pod in &running {
            assert_eq!(real_node::restarts(pod), 0, "{}", real_node::describe(pod));
        }
    }
    let redis_pod = real_node::wait_pods_running(
        &pods,
        "app.kubernetes.io/instance=demo,app.kubernetes.io/component=session-store",
        1,
        WAIT,
    )
    .await
    .remove(0);
    let redis_image_running = redis_pod
        .spec
        .as_ref()
        .map(|s| s.containers[0].image.clone().unwrap_or_default());
    assert_eq!(redis_image_running.as_deref(), Some(redis_image.as_str()));

    // The app gets REDIS_URL (SESSION_REDIS_URL for demo-full) from the
    // operator's Secret, not from anything the test sets.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    for (app, var) in [("demo", "REDIS_URL"), ("demo-full", "SESSION_REDIS_URL")] {
        let deployment = serde_json::to_value(deployments.get(app).await.expect("app Deployment"))
            .expect("serializes");
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
        let url_ref = env
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == var))
            .map(|e| e["valueFrom"]["secretKeyRef"].clone());
        assert_eq!(
            url_ref,
            Some(json!({"name": format!("{app}-redis"), "key": "url"})),
            "{app}: {var} comes from the operator's Secret"
        );
    }

    // Redis knows one enabled user, the app's. Asked from inside its own pod
    // (loopback, where no NetworkPolicy applies; REDISCLI_AUTH there is the
    // app user's password from the Secret): without credentials, or as
    // `default`, a client is refused; as `app` it may PING but not run
    // dangerous or admin commands.
    let in_redis = |script: String| {
        let out = real_node::kubectl(&[
            "-n",
            &ns.name,
            "exec",
            "deploy/demo-redis",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        format!("{}{}", out.stdout, out.stderr)
    };
    let anonymous = in_redis("unset REDISCLI_AUTH; redis-cli ping".into());
    assert!(
        anonymous.contains("NOAUTH"),
        "without credentials: {anonymous}"
    );
    let default = in_redis("redis-cli --user default ping".into());
    assert!(
        default.contains("WRONGPASS"),
        "the default user is off: {default}"
    );
    assert_eq!(in_redis("redis-cli --user app ping".into()).trim(), "PONG");
    for command in [
        "config get maxmemory",
        "flushall",
        "shutdown nosave",
        "replicaof 127.0.0.1 1",
        "acl list",
        "keys '*'",
    ] {
        let out = in_redis(format!("redis-cli --user app {command}"));
        assert!(out.contains("NOPERM"), "app user ran {command}: {out}");
    }

    // NetworkPolicy, enforced by kube-router on the node: a pod that is not
    // the app's cannot connect to Redis (without enforcement it would get
    // NOAUTH), while the app's pods reach it (below); and Redis itself
    // reaches nothing (its egress is denied).
    let redis_host = format!("demo-redis.{}.svc", ns.name);
    let outsider = redis_client_pod(&pods, &redis_image, &["-h", &redis_host, "ping"]).await;
    // kube-router rejects (connection refused); a dropping enforcer would
    // leave it waiting until its deadline.
    let refused =
        outsider.contains("Connection refused") || outsider.starts_with("reason=DeadlineExceeded");
    assert!(
        outsider.contains("started=true")
            && refused
            && !outsider.contains("NOAUTH")
            && !outsider.contains("PONG"),
        "a pod that is not the app's reached Redis (or never ran): {outsider}"
    );
    let app_service =
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), &ns.name)
            .get("demo")
            .await
            .expect("app Service")
            .spec
            .and_then(|s| s.cluster_ip)
            .expect("ClusterIP");
    // The app's HTTP port answers anyone else (redis-cli reads "HTTP/1.1 ..."
    // as a protocol error), but Redis may not open a connection to it.
    let control = redis_client_pod(
        &pods,
        &redis_image,
        &["-h", &app_service, "-p", "80", "ping"],
    )
    .await;
    assert!(
        control.contains("Protocol error"),
        "the app's port answers: {control}"
    );
    let egress = in_redis(format!("redis-cli -h {app_service} -p 80 ping"));
    assert!(
        egress.contains("Connection refused") && !egress.contains("Protocol error"),
        "Redis opened a connection: {egress}"
    );

    // A scheduled job runs once, now (a Job from its CronJob, as
    // `kubectl create job --from` does), on the real node: with the app's
    // binding it reaches the session store, which the NetworkPolicy admits
    // it to, and it ends.
    kubectl_ok(&[
        "-n",
        &ns.name,
        "create",
        "job",
        "session-check-now",
        "--from=cronjob/demo-full-session-check",
    ]);
    let waited = real_node::kubectl(&[
        "-n",
        &ns.name,
        "wait",
        "--for=condition=complete",
        "--timeout=150s",
        "job/session-check-now",
    ]);
    let job_logs = real_node::kubectl(&["-n", &ns.name, "logs", "job/session-check-now"]);
    assert!(
        waited.success && job_logs.stdout.contains("PONG"),
        "the scheduled job did not reach its session store: {}{}\n{}{}",
        waited.stdout,
        waited.stderr,
        job_logs.stdout,
        job_logs.stderr
    );

    // The workers (a Deployment of their own, two pods) consume the job
    // queue in the session store: jobs queued from one worker pod, through
    // its binding, are each taken by exactly one worker, whichever it is.
    let jobs: Vec<String> = (1..=6).map(|i| format!("job-{i}")).collect();
    for job in &jobs {
        kubectl_ok(&[
            "-n",
            &ns.name,
            "exec",
            "deploy/demo-full-jobs",
            "--",
            "/usr/local/bin/session-demo",
            "enqueue",
            "--redis-binding=session-store",
            job,
        ]);
    }
    let worker_selector = "app.kubernetes.io/instance=demo-full,app.kubernetes.io/component=worker";
    let done_count = |logs: &str, job: &str| {
        logs.lines()
            .filter(|l| l.contains("job done") && l.contains(&format!("job={job} ")))
            .count()
    };
    let mut worker_logs = String::new();
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        worker_logs = real_node::kubectl(&[
            "-n",
            &ns.name,
            "logs",
            "-l",
            worker_selector,
            "--prefix",
            "--tail=-1",
        ])
        .stdout;
        if jobs.iter().all(|job| done_count(&worker_logs, job) >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for job in &jobs {
        assert_eq!(
            done_count(&worker_logs, job),
            1,
            "{job} is done exactly once by the workers:\n{worker_logs}"
        );
    }

    // No password on Redis's command line (what ps and /proc show).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &ns.name);
    let password = secrets
        .get("demo-redis")
        .await
        .expect("Secret")
        .data
        .and_then(|d| {
            d.get("password")
                .map(|p| String::from_utf8_lossy(&p.0).into_owned())
        })
        .expect("password");
    let cmdline = kubectl_ok(&[
        "-n",
        &ns.name,
        "exec",
        "deploy/demo-redis",
        "--",
        "grep",
        "-a",
        ".",
        "/proc/1/cmdline",
    ]);
    assert!(cmdline.contains("redis-server"), "{cmdline}");
    assert!(
        !cmdline.contains(&password),
        "the password is on Redis's command line"
    );
    // Nor in what the kubelet hands the runtime (Redis rewrites its process
    // title, so /proc alone would not tell): the args name only redis.conf.
    let args = redis_pod
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].args.clone());
    assert_eq!(args, Some(vec!["/etc/redis/redis.conf".to_string()]));

    // From inside an app pod, through the URL the operator generated (DNS name
    // demo-redis.<ns>.svc, password and all). The enforcer lets a new pod in
    // once it has put the pod's address into the policy's ipset, a moment
    // after the pod is Ready (kube-router syncs on pod events): so a few
    // seconds of retries, then PONG.
    for (app, url_env) in [("demo", "REDIS_URL"), ("demo-full", "SESSION_REDIS_URL")] {
        let deploy = format!("deploy/{app}");
        let mut last = String::new();
        support::wait_until(
            Duration::from_secs(30),
            &format!("{app} reaches its Redis through the generated URL"),
            || {
                let out = real_node::kubectl(&[
                    "-n",
                    &ns.name,
                    "exec",
                    &deploy,
                    "--",
                    "session-demo",
                    "redis-ping",
                    "--redis-url-env",
                    url_env,
                ]);
                last = format!("{}{}", out.stdout, out.stderr);
                let pong = out.success && out.stdout.trim() == "PONG";
                async move { pong }
            },
        )
        .await;
        assert!(last.trim().ends_with("PONG"), "{app}: {last}");
    }

    // demo-full's service bindings (spec.serviceBindings): the kubelet
    // projected the files, the demo serves with the URL from
    // /bindings/session-store/uri, and the same binding reaches Redis from a
    // shell-less exec; the bucket's binding has its values and its keys.
    let binding_ping = real_node::kubectl(&[
        "-n",
        &ns.name,
        "exec",
        "deploy/demo-full",
        "--",
        "session-demo",
        "redis-ping",
        "--redis-binding",
        "session-store",
    ]);
    assert_eq!(
        binding_ping.stdout.trim(),
        "PONG",
        "through the binding: {}{}",
        binding_ping.stdout,
        binding_ping.stderr
    );
    let binding = |name: &str| {
        let out = kubectl_ok(&[
            "-n",
            &ns.name,
            "exec",
            "deploy/demo-full",
            "--",
            "session-demo",
            "binding",
            name,
        ]);
        serde_json::from_str::<serde_json::Value>(out.trim())
            .unwrap_or_else(|e| panic!("binding {name} is JSON ({e}): {out}"))
    };
    let storage = binding("object-storage");
    for (entry, value) in [
        ("type", "s3"),
        ("bucket", "demo-full-uploads"),
        ("region", "eu-west-1"),
        ("endpoint", "http://minio.storage.svc:9000"),
        ("force-path-style", "true"),
        // The example Secret's values, shown by length only.
        ("access-key-id", "<secret, 15 bytes>"),
        ("secret-access-key", "<secret, 15 bytes>"),
    ] {
        assert_eq!(
            storage[entry],
            json!(value),
            "object-storage/{entry}: {storage}"
        );
    }
    let session = binding("session-store");
    assert_eq!(session["type"], json!("redis"), "{session}");
    assert_eq!(
        session["host"],
        json!(format!("demo-full-redis.{}.svc", ns.name)),
        "{session}"
    );
    assert_eq!(session["username"], json!("app"), "{session}");

    // kubectl logs reaches the kubelet: the app logged its start.
    let logs = kubectl_ok(&["-n", &ns.name, "logs", "deploy/demo"]);
    assert!(logs.contains("session-demo started"), "app log: {logs}");

    // Sessions live in Redis: through a port-forward to the Service, the same
    // cookie counts on, whichever replica answers. (kubectl picks one pod of
    // the Service, so the rollout must be complete for it to stay.)
    kubectl_ok(&[
        "-n",
        &ns.name,
        "rollout",
        "status",
        "deploy/demo",
        "--timeout=120s",
    ]);
    // The answer is session-demo's contract: {"visits", "served_by", "store"}.
    let forward = PortForward::start(&ns.name, "svc/demo", 80);
    let (cookie, first) = forward.get("/session", None);
    let cookie = cookie.expect("the first answer sets a session cookie");
    assert_eq!(first["visits"], 1, "{first}");
    assert_eq!(first["store"], "redis", "{first}");
    let served_by_the_app = |body: &serde_json::Value| {
        body["served_by"]
            .as_str()
            .is_some_and(|pod| pod.starts_with("demo-"))
    };
    assert!(
        served_by_the_app(&first),
        "served by one of the app's pods: {first}"
    );
    for visit in 2..=4 {
        // Same session: no new cookie, and the count goes on.
        let (new_cookie, body) = forward.get("/session", Some(&cookie));
        assert_eq!(
            new_cookie, None,
            "a known session gets no new cookie: {body}"
        );
        assert_eq!(body["visits"], visit, "{body}");
        assert_eq!(body["store"], "redis", "{body}");
        assert!(
            served_by_the_app(&body),
            "served by one of the app's pods: {body}"
        );
    }
    drop(forward);

    // Rotation in place: a new password written into the Secret (same name)
    // gives Redis new users and the app a new URL; Redis restarts, the app's
    // pods roll and reconnect, and the old password is refused.
    let rotated = format!("rotated-{}", support::suffix());
    let patch = json!({"stringData": {"password": rotated}}).to_string();
    kubectl_ok(&[
        "-n",
        &ns.name,
        "patch",
        "secret",
        "demo-redis",
        "--type",
        "merge",
        "-p",
        &patch,
    ]);
    support::wait_until(WAIT, "the url follows the new password", || async {
        secrets
            .get("demo-redis")
            .await
            .ok()
            .and_then(|s| s.data)
            .is_some_and(|d| {
                d.get("url")
                    .is_some_and(|u| String::from_utf8_lossy(&u.0).contains(&rotated))
            })
    })
    .await;
    for deployment in ["deploy/demo-redis", "deploy/demo"] {
        support::wait_until(WAIT, "the rollout after the rotation", || async {
            real_node::kubectl(&[
                "-n",
                &ns.name,
                "rollout",
                "status",
                deployment,
                "--timeout=5s",
            ])
            .success
        })
        .await;
    }
    support::wait_until(
        WAIT,
        "the app reaches Redis with the new password",
        || async {
            real_node::kubectl(&[
                "-n",
                &ns.name,
                "exec",
                "deploy/demo",
                "--",
                "session-demo",
                "redis-ping",
            ])
            .stdout
            .trim()
                == "PONG"
        },
    )
    .await;
    let said = in_redis(format!(
        "REDISCLI_AUTH={password} redis-cli --user app ping"
    ));
    assert!(
        said.contains("WRONGPASS"),
        "the old password still works: {said}"
    );
}

/// What `session-demo jwt-keys` prints in `pod`: the kid that signs, the JWKS's kids.
fn jwt_keys_in(namespace: &str, pod: &str) -> Option<(String, Vec<String>)> {
    let out = real_node::kubectl(&[
        "-n",
        namespace,
        "exec",
        pod,
        "--",
        "session-demo",
        "jwt-keys",
    ]);
    let seen: serde_json::Value = serde_json::from_str(out.stdout.trim()).ok()?;
    let kids = seen["jwks"]
        .as_array()?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    Some((seen["kid"].as_str()?.to_string(), kids))
}

/// Shared JWT signing keys on real pods: both replicas read the same key
/// files from the Secret volume, and a rotation reaches the running pods
/// (the kubelet rewrites the files) without restarting them.
#[tokio::test]
async fn jwt_keys_reach_running_pods_and_rotate_without_a_restart() {
    let setup = real_node::setup("real-jwt").await;
    let (client, ns) = (setup.client.clone(), &setup.ns);
    let mut app = load_yaml("examples/basic.yaml").remove(0);
    app["metadata"]["name"] = json!("idp");
    app["spec"]["sessionStore"] = json!({"type": "none"});
    app["spec"]["identity"] = json!({"jwt": {"algorithm": "ES256", "tokenLifetime": "1h"}});
    apply_objects(&client, &ns.name, &[app]).await;
    let apps: Api<StatelessApp> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    wait_ready(&apps, "idp", WAIT).await;
    let status = |app: &StatelessApp| {
        serde_json::to_value(app.status.as_ref()).expect("serializes")["signingKeys"].clone()
    };
    let before = status(&apps.get("idp").await.expect("app"));
    let (active, next) = (
        before["activeKeyId"]
            .as_str()
            .expect("activeKeyId")
            .to_string(),
        before["nextKeyId"].as_str().expect("nextKeyId").to_string(),
    );
    let running = real_node::wait_pods_running(
        &pods,
        "app.kubernetes.io/instance=idp,app.kubernetes.io/component=app",
        2,
        WAIT,
    )
    .await;
    let names: Vec<String> = running
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    for pod in &names {
        assert_eq!(
            jwt_keys_in(&ns.name, pod),
            Some((active.clone(), vec![active.clone(), next.clone()])),
            "{pod} signs with the active key and knows the next"
        );
    }

    let rotate =
        json!({"metadata": {"annotations": {"stateless.dev/rotate-signing-keys": "real-1"}}});
    apps.patch(
        "idp",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(rotate),
    )
    .await
    .expect("annotate");
    // The kubelet refreshes Secret volumes on its sync period (1 min) plus
    // its cache's TTL: allow three minutes.
    let asked = std::time::Instant::now();
    for pod in &names {
        let mut seen = None;
        support::wait_until(WAIT, &format!("{pod} sees the rotated keys"), || {
            seen = jwt_keys_in(&ns.name, pod);
            let rotated = seen.as_ref().is_some_and(|(kid, kids)| {
                kid == &next && kids.first() == Some(&next) && kids.contains(&active)
            });
            async move { rotated }
        })
        .await;
    }
    println!(
        "jwt rotation: the new keys reached {} running pods {:.1} s after the request",
        names.len(),
        asked.elapsed().as_secs_f64()
    );
    let after = real_node::wait_pods_running(
        &pods,
        "app.kubernetes.io/instance=idp,app.kubernetes.io/component=app",
        2,
        WAIT,
    )
    .await;
    for pod in &after {
        assert!(
            names.contains(&pod.metadata.name.clone().unwrap_or_default()),
            "the same pods, not new ones: {}",
            real_node::describe(pod)
        );
        assert_eq!(real_node::restarts(pod), 0, "{}", real_node::describe(pod));
    }
    let retired = status(&apps.get("idp").await.expect("app"))["retiredKeyIds"].clone();
    assert_eq!(retired, json!([active]), "the old key stays published");
}

/// Run `redis-cli ARGS` in a pod of its own that is not the app's (no
/// credentials either), for at most 20 s; how it ended and its output.
async fn redis_client_pod(pods: &Api<Pod>, image: &str, args: &[&str]) -> String {
    let name = format!("redis-client-{}", support::suffix());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "outsider"}},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 20,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 999, "runAsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "redis-cli",
                "image": image,
                "imagePullPolicy": "Never",
                "command": std::iter::once("redis-cli").chain(args.iter().copied()).collect::<Vec<_>>(),
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        }
    }))
    .expect("client pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    real_node::wait_pod_finished(pods, &name, WAIT).await;
    // It ran (its image started) and was stopped by its deadline, still waiting.
    let status = pods.get(&name).await.ok().and_then(|p| p.status);
    let reason = status
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_default();
    let started = status.and_then(|s| s.container_statuses).is_some_and(|cs| {
        cs.iter().any(|c| {
            c.state
                .as_ref()
                .is_some_and(|st| st.terminated.is_some() || st.running.is_some())
        })
    });
    let namespace = pods.namespace().unwrap_or_default();
    let out = real_node::kubectl(&["-n", namespace, "logs", &name]);
    let _ = pods.delete(&name, &DeleteParams::default()).await;
    format!(
        "reason={reason} started={started}\n{}{}",
        out.stdout, out.stderr
    )
}

/// `kubectl port-forward` to a local port, stopped on drop.
struct PortForward {
    child: std::process::Child,
    port: u16,
}

impl PortForward {
    fn start(namespace: &str, target: &str, remote: u16) -> Self {
        let mut child = Command::new(support::tool("kubectl"))
            .arg("--kubeconfig")
            .arg(support::kubeconfig_path())
            .args(["-n", namespace, "port-forward", "--address", "127.0.0.1"])
            .arg(target)
            .arg(format!(":{remote}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl port-forward");
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        // kubectl logs every connection to stdout: keep reading, or it dies
        // of a broken pipe on the first request.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        match (read, port) {
            (Ok(_), Some(port)) => Self { child, port },
            _ => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("kubectl port-forward {target} did not start: {line}{err}");
            }
        }
    }

    /// GET `path` (HTTP/1.0, so the answer ends with the connection); the
    /// session cookie it set, if any, and the JSON body.
    fn get(&self, path: &str, cookie: Option<&str>) -> (Option<String>, serde_json::Value) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the port-forward");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let cookie_header = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: demo\r\n{cookie_header}\r\n"
        )
        .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("malformed HTTP response: {response}"));
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        let set_cookie = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("set-cookie:")
                    .then(|| l[11..].trim().to_string())
            })
            .and_then(|v| v.split(';').next().map(str::to_string));
        let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?}: {e}"));
        (set_cookie, json)
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
