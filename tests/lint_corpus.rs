//! The engine over the rendered Helm chart corpus in `tests/corpus/charts`
//! (copied from `../shared/corpus` by `hack/corpus-sync.py`; `tests/corpus/PROVENANCE.md`
//! names each file's chart, version and values). Expectations come from
//! reading the manifests, not from the linter's output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use stateless_operator::lint::{Loaded, lint, load_paths};
use stateless_operator::rules::{Config, Finding, evaluate};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/charts")
}

struct Corpus {
    loaded: Loaded,
    findings: Vec<Finding>,
}

fn corpus() -> Corpus {
    let loaded = load_paths(&[corpus_dir()]);
    let findings = lint(&loaded, &Config::default());
    Corpus { loaded, findings }
}

fn file_name(f: &Finding) -> &str {
    f.file
        .as_deref()
        .and_then(|p| Path::new(p).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("")
}

impl Corpus {
    fn in_file(&self, file: &str) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| file_name(f) == file)
            .collect()
    }

    /// (rule, kind, name) triples of one file.
    fn triples(&self, file: &str) -> BTreeSet<(String, String, String)> {
        self.in_file(file)
            .iter()
            .map(|f| (f.rule.to_string(), f.kind.clone(), f.name.clone()))
            .collect()
    }

    fn has(&self, file: &str, rule: &str, kind: &str, name: &str) {
        let t = self.triples(file);
        assert!(
            t.contains(&(rule.to_string(), kind.to_string(), name.to_string())),
            "{file}: expected {rule} on {kind}/{name}; got {t:#?}"
        );
    }

    fn lacks(&self, file: &str, rule: &str) {
        let hits: Vec<_> = self
            .in_file(file)
            .into_iter()
            .filter(|f| f.rule.as_str() == rule)
            .collect();
        assert!(hits.is_empty(), "{file}: unexpected {rule}: {hits:#?}");
    }

    fn lacks_on(&self, file: &str, name: &str) {
        let hits: Vec<_> = self
            .in_file(file)
            .into_iter()
            .filter(|f| f.name == name)
            .collect();
        assert!(
            hits.is_empty(),
            "{file}: unexpected findings on {name}: {hits:#?}"
        );
    }
}

#[test]
fn every_corpus_file_reads_without_errors() {
    let c = corpus();
    let errors: Vec<String> = c.loaded.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "read errors: {errors:#?}");
    let objects = c.loaded.objects();
    let files: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.source.as_ref().map(|s| s.file.as_str()))
        .collect();
    let on_disk = std::fs::read_dir(corpus_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
                .count()
        })
        .unwrap_or(0);
    assert!(on_disk >= 40, "corpus has {on_disk} files");
    assert_eq!(files.len(), on_disk, "every file yields objects");
}

/// `lint` evaluates one group of namespaces at a time (to keep memory low);
/// that must find exactly what evaluating every object at once finds, on the
/// corpus, the fixtures and the sticky-mechanism fixtures (lines aside: whole
/// evaluation gives object lines, `lint` field lines).
#[test]
fn grouped_evaluation_equals_whole_input_evaluation() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let inputs = [
        corpus_dir(),
        root.join("tests/fixtures/lint"),
        root.join("examples"),
    ];
    let loaded = load_paths(&inputs);
    let key = |f: &Finding| {
        (
            f.file.clone(),
            f.kind.clone(),
            f.namespace.clone(),
            f.name.clone(),
            f.rule,
            f.path.clone(),
            f.message.clone(),
            f.waived,
        )
    };
    let mut grouped: Vec<_> = lint(&loaded, &Config::default()).iter().map(key).collect();
    let mut whole: Vec<_> = evaluate(&loaded.objects(), &Config::default())
        .iter()
        .map(key)
        .collect();
    grouped.sort();
    whole.sort();
    assert!(
        whole.len() > 100,
        "the inputs have {} findings",
        whole.len()
    );
    assert_eq!(grouped, whole);
}

/// The corpus is only worth its expectations if a reader can re-render every
/// file: each one has a provenance entry, and no entry names a missing file.
#[test]
fn every_corpus_file_has_a_provenance_entry() {
    let provenance_path = corpus_dir().join("../PROVENANCE.md");
    let provenance = std::fs::read_to_string(&provenance_path)
        .unwrap_or_else(|e| panic!("{}: {e}", provenance_path.display()));
    let entries: BTreeSet<String> = provenance
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
        .map(str::to_string)
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".yaml"))
                .collect()
        })
        .unwrap_or_default();
    assert!(on_disk.len() >= 40, "corpus has {} files", on_disk.len());
    assert_eq!(
        entries, on_disk,
        "PROVENANCE.md entries vs files in tests/corpus/charts"
    );
}

#[test]
fn findings_point_at_existing_lines_of_their_field() {
    let c = corpus();
    for f in &c.findings {
        let (Some(file), Some(line)) = (&f.file, f.line) else {
            panic!("corpus finding without source: {f:?}");
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let Some(source_line) = text.lines().nth(line - 1) else {
            panic!("{file}:{line} does not exist");
        };
        // Annotation findings point at the annotation itself.
        if let Some(key) = f
            .path
            .strip_prefix("metadata.annotations[\"")
            .and_then(|k| k.strip_suffix("\"]"))
        {
            assert!(
                source_line.contains(key),
                "{file}:{line} is `{source_line}`, expected {key}"
            );
        }
        if f.path.ends_with("sessionAffinity") {
            assert!(
                source_line.contains("sessionAffinity"),
                "{file}:{line}: `{source_line}`"
            );
        }
    }
}

#[test]
fn session_affinity_expectations() {
    let c = corpus();
    // server.service.sessionAffinity: ClientIP on the argocd-server Service.
    c.has(
        "argo-cd-server-clientip.yaml",
        "session-affinity",
        "Service",
        "argocd-server",
    );
    c.lacks("argo-cd-default.yaml", "session-affinity");
    // service.sessionAffinity: ClientIP (nextcloud, keycloakx).
    c.has(
        "nextcloud-pvc-sticky.yaml",
        "session-affinity",
        "Service",
        "nextcloud",
    );
    c.has(
        "keycloakx-local-cache.yaml",
        "session-affinity",
        "Service",
        "keycloak-keycloakx-http",
    );
    // prometheus server is a TSDB, stateful by design: its ClientIP Service is out of scope.
    c.lacks("prometheus-server-sticky.yaml", "session-affinity");
}

#[test]
fn sticky_ingress_expectations() {
    let c = corpus();
    c.has(
        "podinfo-sticky-ingress.yaml",
        "sticky-ingress",
        "Ingress",
        "podinfo",
    );
    c.has(
        "bookstack-file-sessions.yaml",
        "sticky-ingress",
        "Ingress",
        "bookstack",
    );
    c.has(
        "nextcloud-pvc-sticky.yaml",
        "sticky-ingress",
        "Ingress",
        "nextcloud",
    );
    c.has(
        "wordpress-sticky-ingress.yaml",
        "sticky-ingress",
        "Ingress",
        "wordpress",
    );
    // upstream-hash-by: $binary_remote_addr (legacy extensions/v1beta1 Ingress).
    c.has(
        "owncloud-iphash-ingress.yaml",
        "sticky-ingress",
        "Ingress",
        "owncloud",
    );
    // Traefik sticky cookie annotations on the Service.
    c.has(
        "ghost-traefik-sticky.yaml",
        "sticky-ingress",
        "Service",
        "ghost",
    );
    // ALB target-group-attributes stickiness.enabled=true.
    c.has(
        "grafana-ha-alb-sticky.yaml",
        "sticky-ingress",
        "Ingress",
        "grafana",
    );
    // Ingresses without stickiness annotations.
    for file in [
        "podinfo-hpa.yaml",
        "argo-cd-ha.yaml",
        "docker-registry-s3-ha.yaml",
        "mattermost-s3-hpa.yaml",
    ] {
        c.lacks(file, "sticky-ingress");
    }
}

#[test]
fn host_path_expectations() {
    let c = corpus();
    // persistence.hostPath and nextcloudData.hostPath.
    let host: Vec<String> = c
        .in_file("nextcloud-hostpath.yaml")
        .iter()
        .filter(|f| f.rule.as_str() == "host-path")
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(host.len(), 2, "{host:?}");
    // A hostPath PersistentVolume bound to the drupal claim.
    c.has(
        "drupal-hostpath-pv.yaml",
        "host-path",
        "Deployment",
        "drupal",
    );
    // Node agents: DaemonSets with hostPath are not the application tier.
    for file in [
        "node-exporter-default.yaml",
        "promtail-default.yaml",
        "prometheus-default.yaml",
    ] {
        c.lacks(file, "host-path");
    }
    assert!(c.in_file("node-exporter-default.yaml").is_empty());
    assert!(c.in_file("promtail-default.yaml").is_empty());
}

#[test]
fn uploads_and_claims_expectations() {
    let c = corpus();
    // CMD_IMAGE_UPLOAD_TYPE=filesystem, uploads on an RWO claim.
    c.has(
        "hackmd-uploads.yaml",
        "local-upload-dir",
        "Deployment",
        "hackmd",
    );
    c.has(
        "hackmd-uploads.yaml",
        "pvc-app-tier",
        "Deployment",
        "hackmd",
    );
    // chartmuseum STORAGE=local on an RWO claim; the S3 variant is clean.
    c.has(
        "chartmuseum-local-pvc.yaml",
        "local-upload-dir",
        "Deployment",
        "charts-chartmuseum",
    );
    c.has(
        "chartmuseum-local-pvc.yaml",
        "pvc-app-tier",
        "Deployment",
        "charts-chartmuseum",
    );
    c.lacks("chartmuseum-s3-ha.yaml", "local-upload-dir");
    c.lacks("chartmuseum-s3-ha.yaml", "pvc-app-tier");
    // Nextcloud user files (/var/www/html/data) on an emptyDir when persistence is off.
    c.has(
        "nextcloud-default.yaml",
        "local-upload-dir",
        "Deployment",
        "nextcloud",
    );
    // Registry blobs on an emptyDir vs. in S3.
    c.has(
        "docker-registry-default.yaml",
        "local-upload-dir",
        "Deployment",
        "registry-docker-registry",
    );
    c.lacks("docker-registry-s3-ha.yaml", "local-upload-dir");
    // Default persistence: ReadWriteOnce claims in web Deployments.
    for (file, name) in [
        ("wordpress-default.yaml", "wordpress"),
        ("grafana-persistence.yaml", "grafana"),
        ("jenkins-default.yaml", "jenkins"),
        (
            "mattermost-team-edition.yaml",
            "mattermost-mattermost-team-edition",
        ),
    ] {
        c.has(file, "pvc-app-tier", "Deployment", name);
    }
    // ReadWriteMany claims are shared by all replicas.
    for file in [
        "bookstack-file-sessions.yaml",
        "nextcloud-pvc-sticky.yaml",
        "wordpress-sticky-ingress.yaml",
    ] {
        c.lacks(file, "pvc-app-tier");
    }
    c.lacks("joomla-no-persistence.yaml", "pvc-app-tier");
    c.lacks("mattermost-s3-hpa.yaml", "pvc-app-tier");
}

#[test]
fn session_expectations() {
    let c = corpus();
    // env SESSION_DRIVER=file (CACHE_DRIVER=file is a cache, not a session).
    c.has(
        "bookstack-file-sessions.yaml",
        "in-memory-session",
        "Deployment",
        "bookstack",
    );
    let msgs: Vec<&str> = c
        .in_file("bookstack-file-sessions.yaml")
        .iter()
        .filter(|f| f.rule.as_str() == "in-memory-session")
        .map(|f| f.message.as_str())
        .collect();
    assert!(msgs.iter().all(|m| !m.contains("CACHE_DRIVER")), "{msgs:?}");
    assert!(
        msgs.iter()
            .all(|m| m.contains("Container `bookstack`") && m.contains("env `SESSION_DRIVER=file`")),
        "{msgs:?}"
    );
    // KC_CACHE=local.
    c.has(
        "keycloakx-local-cache.yaml",
        "in-memory-session",
        "StatefulSet",
        "keycloak-keycloakx",
    );
    c.lacks("keycloakx-default.yaml", "in-memory-session");
    // oauth2-proxy keeps sessions in an encrypted cookie.
    c.lacks("oauth2-proxy-ha.yaml", "in-memory-session");
    // Traps: docker-registry's `storage.cache.blobdescriptor: inmemory` is a
    // cache; hackmd's CMD_SESSION_SECRET and express-gateway's `session:`
    // block (resave, saveUninitialized, secret) select no backend.
    for file in [
        "docker-registry-default.yaml",
        "docker-registry-s3-ha.yaml",
        "hackmd-uploads.yaml",
        "express-gateway-default.yaml",
    ] {
        c.lacks(file, "in-memory-session");
    }
}

#[test]
fn replica_expectations() {
    let c = corpus();
    c.has(
        "podinfo-default.yaml",
        "single-replica",
        "Deployment",
        "podinfo",
    );
    c.has(
        "grafana-default.yaml",
        "single-replica",
        "Deployment",
        "grafana",
    );
    // replicas >= 2, or an HPA with maxReplicas >= 2.
    for file in [
        "podinfo-hpa.yaml",
        "podinfo-sticky-ingress.yaml",
        "mattermost-s3-hpa.yaml",
        "grafana-ha-alb-sticky.yaml",
        "oauth2-proxy-ha.yaml",
        "chartmuseum-s3-ha.yaml",
        "docker-registry-s3-ha.yaml",
    ] {
        c.lacks(file, "single-replica");
    }
    // argo-cd-ha: server and repo-server autoscaled, applicationset replicas 2.
    let ha: Vec<String> = c
        .in_file("argo-cd-ha.yaml")
        .iter()
        .filter(|f| f.rule.as_str() == "single-replica")
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(ha, ["argocd-dex-server"]);
}

#[test]
fn stateful_by_design_and_agents_are_out_of_scope() {
    let c = corpus();
    // Redis (a data store). The application and notifications controllers
    // declare no traffic port: the state rules judge them and find nothing
    // (read-only root, no node-local state), and one replica of a controller
    // is not `single-replica`.
    for name in [
        "argocd-redis",
        "argocd-application-controller",
        "argocd-notifications-controller",
    ] {
        c.lacks_on("argo-cd-default.yaml", name);
    }
    // Prometheus server (TSDB), alertmanager, pushgateway, kube-state-metrics, node-exporter.
    assert!(
        c.in_file("prometheus-default.yaml").is_empty(),
        "{:#?}",
        c.in_file("prometheus-default.yaml")
    );
    assert!(c.in_file("prometheus-server-sticky.yaml").is_empty());
}

/// The application catalogue (`src/rules/apps.rs`): each chart's main
/// container runs a catalogued image whose documented state directory sits on
/// a node-local volume. Read from the manifests: the mount and its volume.
#[test]
fn catalogued_app_state_expectations() {
    let c = corpus();
    let uploads = |file: &str| -> Vec<&Finding> {
        c.in_file(file)
            .into_iter()
            .filter(|f| f.rule.as_str() == "local-upload-dir")
            .collect()
    };
    for (file, kind, name, app) in [
        // Bitnami images: `/bitnami/<app>` (moodle: `/bitnami`) on the chart's RWO claim.
        (
            "wordpress-default.yaml",
            "Deployment",
            "wordpress",
            "WordPress (Bitnami)",
        ),
        (
            "dokuwiki-default.yaml",
            "Deployment",
            "dokuwiki",
            "DokuWiki (Bitnami)",
        ),
        (
            "drupal-hostpath-pv.yaml",
            "Deployment",
            "drupal",
            "Drupal (Bitnami)",
        ),
        (
            "ghost-traefik-sticky.yaml",
            "Deployment",
            "ghost",
            "Ghost (Bitnami)",
        ),
        (
            "mediawiki-default.yaml",
            "Deployment",
            "mediawiki",
            "MediaWiki (Bitnami)",
        ),
        (
            "moodle-default.yaml",
            "Deployment",
            "moodle",
            "Moodle (Bitnami)",
        ),
        (
            "owncloud-iphash-ingress.yaml",
            "Deployment",
            "owncloud",
            "ownCloud (Bitnami)",
        ),
        (
            "redmine-default.yaml",
            "Deployment",
            "redmine",
            "Redmine (Bitnami)",
        ),
        // persistence off: `/bitnami/joomla` on an emptyDir.
        (
            "joomla-no-persistence.yaml",
            "Deployment",
            "joomla",
            "Joomla (Bitnami)",
        ),
        // `/var/lib/grafana` (SQLite database) on an emptyDir / a RWO claim.
        ("grafana-default.yaml", "Deployment", "grafana", "Grafana"),
        (
            "grafana-persistence.yaml",
            "Deployment",
            "grafana",
            "Grafana",
        ),
        ("jenkins-default.yaml", "Deployment", "jenkins", "Jenkins"),
        (
            "nextcloud-default.yaml",
            "Deployment",
            "nextcloud",
            "Nextcloud",
        ),
        (
            "nextcloud-hostpath.yaml",
            "Deployment",
            "nextcloud",
            "Nextcloud",
        ),
        (
            "mattermost-team-edition.yaml",
            "Deployment",
            "mattermost-mattermost-team-edition",
            "Mattermost",
        ),
    ] {
        c.has(file, "local-upload-dir", kind, name);
        let hits = uploads(file);
        assert!(
            hits.iter()
                .any(|f| f.message.contains(&format!("runs {app}"))
                    && f.message.contains("Source: https://")),
            "{file}: {hits:#?}"
        );
    }
    // Nextcloud's five documented directories share one emptyDir: one finding
    // (the generic `/var/www/html/data` pattern does not add a second); the
    // hostPath variant keeps `html` and `data` on two host directories.
    assert_eq!(uploads("nextcloud-default.yaml").len(), 1);
    assert_eq!(uploads("nextcloud-hostpath.yaml").len(), 2);
    // Jenkins: the k8s-sidecar container mounts `/var/jenkins_home` too; only
    // the Jenkins container is judged.
    assert_eq!(uploads("jenkins-default.yaml").len(), 1);
    // Grafana with `[database] type = mysql` in the mounted grafana.ini keeps
    // nothing in `/var/lib/grafana` that other replicas need; Mattermost with
    // `MM_FILESETTINGS_DRIVERNAME=amazons3` keeps files in S3; the RWX claims
    // are shared.
    for file in [
        "grafana-ha-alb-sticky.yaml",
        "mattermost-s3-hpa.yaml",
        "wordpress-sticky-ingress.yaml",
        "nextcloud-pvc-sticky.yaml",
        "bookstack-file-sessions.yaml",
    ] {
        c.lacks(file, "local-upload-dir");
    }
    // The generic KC_CACHE finding now names Keycloak and the caching guide.
    let keycloak: Vec<&str> = c
        .in_file("keycloakx-local-cache.yaml")
        .iter()
        .filter(|f| f.rule.as_str() == "in-memory-session")
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        keycloak.len() == 1 && keycloak[0].contains("https://www.keycloak.org/server/caching"),
        "{keycloak:?}"
    );
}
