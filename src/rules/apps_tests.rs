//! Unit tests of the application catalogue: every entry against a
//! Deployment that puts its state on an emptyDir (reported) and on a
//! ReadWriteMany claim (not reported), plus image matching and scoping.

use serde_json::{Value, json};

use super::*;
use crate::rules::{Config, Finding, Object, RuleId, evaluate};

fn deployment(containers: Value, volumes: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "site", "namespace": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "site"}},
            "template": {
                "metadata": {"labels": {"app": "site"}},
                "spec": {"containers": containers, "volumes": volumes}
            }
        }
    })
}

fn shared_claim() -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "shared", "namespace": "web"},
        "spec": {"accessModes": ["ReadWriteMany"]}
    })
}

/// An image reference of `pattern` (its tag glob turned into a tag).
fn image_of(pattern: &str) -> String {
    match pattern.rsplit_once(':') {
        Some((repo, glob)) if !glob.contains('/') => format!("{repo}:{}", glob.replace('*', "")),
        _ => format!("{pattern}:1.0"),
    }
}

/// Env vars that switch on every state path's `only_with` setting.
fn enabling_env(app: &App) -> Vec<Value> {
    app.state
        .iter()
        .flat_map(|sp| sp.only_with.first())
        .map(|s| {
            let value = s.values.first().copied().unwrap_or("yes");
            json!({"name": s.keys[0], "value": value})
        })
        .collect()
}

/// The app's container with every state path mounted from volume `data`.
fn app_container(app: &App, image: &str, read_only_root: bool) -> Value {
    let mounts: Vec<Value> = app
        .state
        .iter()
        .map(|sp| json!({"name": "data", "mountPath": sp.path}))
        .collect();
    json!({
        "name": "app", "image": image,
        "env": enabling_env(app),
        "volumeMounts": mounts,
        "securityContext": {"readOnlyRootFilesystem": read_only_root}
    })
}

fn run(objects: Vec<Value>) -> Vec<Finding> {
    let objs: Vec<Object> = objects.into_iter().map(Object::new).collect();
    evaluate(&objs, &Config::default())
}

fn uploads(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.rule == RuleId::LocalUploadDir)
        .collect()
}

#[test]
fn every_entry_is_sourced_and_renders_in_a_table() {
    assert!(APPS.len() >= 32, "{} entries", APPS.len());
    let mut names: Vec<&str> = APPS.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), APPS.len(), "app names are unique");
    for app in APPS {
        assert!(!app.images.is_empty(), "{}", app.name);
        assert!(
            !app.state.is_empty() || !app.sessions.is_empty(),
            "{} catalogues nothing",
            app.name
        );
        assert!(!app.sources.is_empty(), "{} has no source", app.name);
        for url in app.sources {
            assert!(url.starts_with("https://"), "{}: {url}", app.name);
        }
        let texts = app
            .state
            .iter()
            .flat_map(|sp| [sp.path, sp.holds])
            .chain(app.sessions.iter().map(|s| s.means))
            .chain(app.images.iter().copied())
            .chain([app.name]);
        for text in texts {
            assert!(
                !text.contains('|') && !text.contains('\n'),
                "{}: `{text}` breaks a Markdown table",
                app.name
            );
        }
        for sp in app.state {
            assert!(sp.path.starts_with('/'), "{}: {}", app.name, sp.path);
        }
        // Every image of the entry is this entry's (no earlier entry takes it).
        for pattern in app.images {
            let found = app_for_image(&image_of(pattern)).map(|a| a.name);
            assert_eq!(found, Some(app.name), "{pattern}");
        }
    }
}

#[test]
fn every_entry_reports_its_state_on_an_empty_dir_and_names_its_source() {
    for app in APPS.iter().filter(|a| !a.state.is_empty()) {
        for pattern in app.images {
            let image = image_of(pattern);
            let f = run(vec![deployment(
                json!([app_container(app, &image, true)]),
                json!([{"name": "data", "emptyDir": {}}]),
            )]);
            let hits = uploads(&f);
            assert_eq!(hits.len(), 1, "{} ({image}): {hits:#?}", app.name);
            let message = &hits[0].message;
            assert!(
                message.contains(app.name) && message.contains(app.sources[0]),
                "{message}"
            );
            for sp in app.state {
                assert!(message.contains(sp.path), "{}: {message}", sp.path);
            }
            assert!(
                hits[0].path.ends_with(".volumeMounts[0].mountPath"),
                "{}",
                hits[0].path
            );
        }
    }
}

#[test]
fn every_entry_is_clean_on_a_read_write_many_claim() {
    for app in APPS.iter().filter(|a| !a.state.is_empty()) {
        let image = image_of(app.images[0]);
        let f = run(vec![
            deployment(
                json!([app_container(app, &image, true)]),
                json!([{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}]),
            ),
            shared_claim(),
        ]);
        assert!(uploads(&f).is_empty(), "{}: {:#?}", app.name, uploads(&f));
    }
}

#[test]
fn every_entry_with_state_reports_the_writable_layer_when_nothing_is_mounted() {
    for app in APPS.iter().filter(|a| !a.state.is_empty()) {
        let image = image_of(app.images[0]);
        let bare = json!({"name": "app", "image": image, "env": enabling_env(app)});
        let f = run(vec![deployment(json!([bare]), json!([]))]);
        let hits = uploads(&f);
        assert_eq!(hits.len(), 1, "{}: {hits:#?}", app.name);
        assert_eq!(hits[0].path, "spec.template.spec.containers[0].image");
        assert!(
            hits[0].message.contains("writable layer"),
            "{}",
            hits[0].message
        );
        // A read-only root filesystem: the app cannot write there at all.
        let read_only = json!({
            "name": "app", "image": image, "env": enabling_env(app),
            "securityContext": {"readOnlyRootFilesystem": true}
        });
        let f = run(vec![deployment(json!([read_only]), json!([]))]);
        assert!(uploads(&f).is_empty(), "{}: {:#?}", app.name, uploads(&f));
    }
}

#[test]
fn object_storage_and_database_settings_move_the_state_out_of_the_pod() {
    let cases = [
        (
            "mattermost/mattermost-team-edition:11",
            "MM_FILESETTINGS_DRIVERNAME",
            "amazons3",
        ),
        (
            "quay.io/hedgedoc/hedgedoc:1.10",
            "CMD_IMAGE_UPLOAD_TYPE",
            "s3",
        ),
        ("grafana/grafana:12.3.1", "GF_DATABASE_TYPE", "postgres"),
        ("directus/directus:11", "STORAGE_LOCATIONS", "s3"),
    ];
    for (image, key, value) in cases {
        let Some(app) = app_for_image(image) else {
            panic!("{image} is not catalogued");
        };
        let mut c = app_container(app, image, true);
        c["env"] = json!([{"name": key, "value": value}]);
        let f = run(vec![deployment(
            json!([c]),
            json!([{"name": "data", "emptyDir": {}}]),
        )]);
        assert!(uploads(&f).is_empty(), "{image}: {:#?}", uploads(&f));
    }
}

#[test]
fn grafana_database_in_a_mounted_grafana_ini_counts() {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "grafana", "namespace": "web"},
        "data": {"grafana.ini": "[database]\ntype = mysql\nhost = db:3306\n"}
    });
    let c = json!({
        "name": "grafana", "image": "docker.io/grafana/grafana:12.3.1",
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/grafana/grafana.ini", "subPath": "grafana.ini"},
            {"name": "storage", "mountPath": "/var/lib/grafana"}
        ]
    });
    let volumes = json!([
        {"name": "config", "configMap": {"name": "grafana"}},
        {"name": "storage", "emptyDir": {}}
    ]);
    let f = run(vec![deployment(json!([c.clone()]), volumes.clone()), cm]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
    // Without the ConfigMap in the input the default SQLite database is assumed.
    let f = run(vec![deployment(json!([c]), volumes)]);
    assert_eq!(uploads(&f).len(), 1);
}

#[test]
fn moved_state_paths_follow_their_setting() {
    let c = |value: &str, mount: &str| {
        json!({
            "name": "grafana", "image": "grafana/grafana:12.3.1",
            "env": [{"name": "GF_PATHS_DATA", "value": value}],
            "volumeMounts": [{"name": "data", "mountPath": mount}],
            "securityContext": {"readOnlyRootFilesystem": true}
        })
    };
    let volumes = json!([{"name": "data", "emptyDir": {}}]);
    let f = run(vec![deployment(
        json!([c("/srv/grafana/", "/srv")]),
        volumes.clone(),
    )]);
    assert_eq!(uploads(&f).len(), 1, "{:#?}", uploads(&f));
    assert!(uploads(&f)[0].message.contains("`/srv/grafana`"));
    // The default path is no longer where the data is.
    let f = run(vec![deployment(
        json!([c("/srv/grafana", "/var/lib/grafana")]),
        volumes.clone(),
    )]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
    // A relative path depends on a working directory the manifest does not show.
    let f = run(vec![deployment(
        json!([c("data", "/var/lib/grafana")]),
        volumes,
    )]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
}

#[test]
fn outline_local_storage_is_judged_only_when_selected() {
    let c = |env: Value| {
        json!({
            "name": "outline", "image": "outlinewiki/outline:0.80",
            "env": env,
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/outline/data"}],
            "securityContext": {"readOnlyRootFilesystem": true}
        })
    };
    let volumes = json!([{"name": "data", "emptyDir": {}}]);
    let f = run(vec![deployment(json!([c(json!([]))]), volumes.clone())]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
    let f = run(vec![deployment(
        json!([c(json!([{"name": "FILE_STORAGE", "value": "local"}]))]),
        volumes,
    )]);
    let messages: Vec<&str> = uploads(&f).iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Outline") && m.contains("/var/lib/outline/data")),
        "{messages:#?}"
    );
}

#[test]
fn drupal_symlinked_web_root_is_the_same_directory() {
    let c = json!({
        "name": "drupal", "image": "drupal:10-apache",
        "volumeMounts": [
            {"name": "shared", "mountPath": "/opt/drupal/web/sites"},
            {"name": "shared", "mountPath": "/opt/drupal/web/modules"},
            {"name": "shared", "mountPath": "/opt/drupal/web/profiles"},
            {"name": "shared", "mountPath": "/opt/drupal/web/themes"}
        ]
    });
    let f = run(vec![
        deployment(
            json!([c]),
            json!([{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}]),
        ),
        shared_claim(),
    ]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
}

#[test]
fn read_only_mounts_and_subdirectories_on_shared_volumes() {
    // Nextcloud data on RWX, the rest of /var/www/html on an emptyDir: the
    // installation is still per pod, the users' files are not.
    let c = json!({
        "name": "nextcloud", "image": "nextcloud:31-apache",
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/var/www/html"},
            {"name": "shared", "mountPath": "/var/www/html/data"}
        ]
    });
    let f = run(vec![
        deployment(
            json!([c]),
            json!([
                {"name": "scratch", "emptyDir": {}},
                {"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}
            ]),
        ),
        shared_claim(),
    ]);
    let hits = uploads(&f);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert!(
        !hits[0].message.contains("/var/www/html/data"),
        "{}",
        hits[0].message
    );
    // A read-only mount: the app cannot write its state there.
    let c = json!({
        "name": "mediawiki", "image": "mediawiki:1.42",
        "volumeMounts": [{"name": "images", "mountPath": "/var/www/html/images", "readOnly": true}]
    });
    let f = run(vec![deployment(
        json!([c]),
        json!([{"name": "images", "emptyDir": {}}]),
    )]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
}

#[test]
fn only_the_app_container_is_judged_not_its_sidecars() {
    let sidecar = json!({
        "name": "backup", "image": "busybox:1.36",
        "volumeMounts": [{"name": "scratch", "mountPath": "/var/www/html"}]
    });
    let app = json!({
        "name": "wordpress", "image": "wordpress:6.5-apache",
        "volumeMounts": [{"name": "shared", "mountPath": "/var/www/html"}]
    });
    let f = run(vec![
        deployment(
            json!([sidecar.clone(), app]),
            json!([
                {"name": "scratch", "emptyDir": {}},
                {"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}
            ]),
        ),
        shared_claim(),
    ]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
    // A sidecar running the app's image is the app, wherever it sits.
    let exporter = json!({"name": "metrics", "image": "wordpress-exporter:1.0"});
    let f = run(vec![deployment(
        json!([exporter, sidecar]),
        json!([{"name": "scratch", "emptyDir": {}}]),
    )]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
}

#[test]
fn registry_tag_and_digest_variants_of_an_image_match() {
    let digest = "sha256:425b1e065a3433f4a7b10d8091fe83b3459c008647cc1e3c3707974832d2ef30";
    for image in [
        "wordpress",
        "wordpress:6.5",
        "library/wordpress:6.5",
        "docker.io/wordpress",
        "docker.io/library/wordpress:6.5-fpm",
        "index.docker.io/library/wordpress:latest",
        "mirror.gcr.io/library/wordpress:6",
        "public.ecr.aws/docker/library/wordpress:6",
        "localhost:5000/wordpress:6",
        "WordPress:6.5",
        &format!("wordpress@{digest}"),
        &format!("docker.io/library/wordpress:6.5@{digest}"),
    ] {
        assert_eq!(
            app_for_image(image).map(|a| a.name),
            Some("WordPress (official image)"),
            "{image}"
        );
    }
    for image in [
        "bitnami/wordpress:6",
        "docker.io/bitnami/wordpress:5.3.2-debian-10-r32",
        "bitnamilegacy/wordpress:6.8.2-debian-12-r5",
        "registry.example.com/bitnami/wordpress:6",
    ] {
        assert_eq!(
            app_for_image(image).map(|a| a.name),
            Some("WordPress (Bitnami)"),
            "{image}"
        );
    }
    assert_eq!(
        app_for_image("quay.io/keycloak/keycloak:26.5.6").map(|a| a.name),
        Some("Keycloak")
    );
    assert_eq!(
        app_for_image("ghcr.io/paperless-ngx/paperless-ngx:2.14").map(|a| a.name),
        Some("Paperless-ngx")
    );
    // Tags choose the image variant; a registry-pinned pattern needs its registry.
    assert_eq!(
        app_for_image("docker.gitea.com/gitea:1.25.4-rootless").map(|a| a.name),
        Some("Gitea (rootless image)")
    );
    assert_eq!(
        app_for_image("gitea/gitea:1.25.4").map(|a| a.name),
        Some("Gitea")
    );
    assert_eq!(app_for_image("ghcr.io/gitea").map(|a| a.name), None);
}

#[test]
fn lookalike_images_are_not_matched() {
    for image in [
        "wordpress-exporter:1.0",
        "bitnami/wordpress-nginx:6",
        "example/wordpress:6",
        "wordpress/cli:2",
        "ghcr.io/acme/nextcloud-backup:1",
        "grafana/grafana-image-renderer:3",
        "grafana/loki:3",
        "jenkins/inbound-agent:4.3-4",
        "kiwigrid/k8s-sidecar:0.1.144",
        "bitnami/moodle-exporter:1",
        "postgres:16",
    ] {
        assert_eq!(app_for_image(image).map(|a| a.name), None, "{image}");
    }
}

#[test]
fn image_references_parse_like_docker_does() {
    let r = parse_image("localhost:5000/team/app:1.2@sha256:abc");
    assert_eq!(
        (r.registry.as_str(), r.path.as_str(), r.tag.as_str()),
        ("localhost:5000", "team/app", "1.2")
    );
    let r = parse_image("docker.io/library/redis");
    assert_eq!(
        (r.registry.as_str(), r.path.as_str(), r.tag.as_str()),
        ("", "redis", "latest")
    );
    let r = parse_image("quay.io/keycloak/keycloak:26");
    assert_eq!(
        (r.registry.as_str(), r.path.as_str()),
        ("quay.io", "keycloak/keycloak")
    );
}

#[test]
fn ini_settings_read_sections_and_plain_keys() {
    let settings = ini_settings(
        "; comment\nAPP_NAME = x\n[database]\ntype = mysql\n# type = sqlite3\n[paths]\ndata=/d\n",
    );
    assert_eq!(
        settings,
        [
            ("APP_NAME".to_string(), "x".to_string()),
            ("database.type".to_string(), "mysql".to_string()),
            ("paths.data".to_string(), "/d".to_string()),
        ]
    );
}

#[test]
fn catalogued_session_settings_are_reported_with_the_app() {
    let keycloak = |extra: Value| {
        let mut c = json!({
            "name": "keycloak", "image": "quay.io/keycloak/keycloak:26.5.6",
            "securityContext": {"readOnlyRootFilesystem": true}
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        deployment(json!([c]), json!([]))
    };
    let sessions = |f: &[Finding]| -> Vec<(String, String)> {
        f.iter()
            .filter(|f| f.rule == RuleId::InMemorySession)
            .map(|f| (f.path.clone(), f.message.clone()))
            .collect()
    };
    // `--cache=local` is Keycloak's own flag, which the generic vocabulary does not know.
    let f = run(vec![keycloak(json!({"args": ["start", "--cache=local"]}))]);
    let hits = sessions(&f);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0].0, "spec.template.spec.containers[0].args[1]");
    assert!(
        hits[0].1.contains("Keycloak")
            && hits[0]
                .1
                .contains("https://www.keycloak.org/server/caching"),
        "{}",
        hits[0].1
    );
    let f = run(vec![keycloak(
        json!({"command": ["/opt/keycloak/bin/kc.sh", "start-dev"]}),
    )]);
    let hits = sessions(&f);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert!(hits[0].1.contains("`start-dev`"), "{}", hits[0].1);
    // The generic KC_CACHE finding now names the app; one finding, not two.
    let f = run(vec![keycloak(
        json!({"env": [{"name": "KC_CACHE", "value": "local"}]}),
    )]);
    let hits = sessions(&f);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert!(hits[0].1.contains("runs Keycloak"), "{}", hits[0].1);
    let f = run(vec![keycloak(json!({"args": ["start", "--cache=ispn"]}))]);
    assert!(sessions(&f).is_empty());
    // Gitea's session provider.
    let gitea = json!({
        "name": "gitea", "image": "gitea/gitea:1.25",
        "env": [{"name": "GITEA__session__PROVIDER", "value": "memory"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
    });
    let f = run(vec![
        deployment(
            json!([gitea]),
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}]),
        ),
        shared_claim(),
    ]);
    let hits = sessions(&f);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert!(hits[0].1.contains("runs Gitea"), "{}", hits[0].1);
}

#[test]
fn an_upload_path_pattern_on_a_catalogued_mount_is_one_finding() {
    // /mattermost/data matches the generic `*/mattermost/data*` pattern too.
    let c = json!({
        "name": "mattermost", "image": "mattermost/mattermost-team-edition:11",
        "volumeMounts": [{"name": "data", "mountPath": "/mattermost/data"}]
    });
    let f = run(vec![deployment(
        json!([c.clone()]),
        json!([{"name": "data", "emptyDir": {}}]),
    )]);
    let hits = uploads(&f);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert!(
        hits[0].message.contains("runs Mattermost"),
        "{}",
        hits[0].message
    );
    // With S3 file storage the directory holds nothing: no finding at all.
    let mut c = c;
    c["env"] = json!([{"name": "MM_FILESETTINGS_DRIVERNAME", "value": "amazons3"}]);
    let f = run(vec![deployment(
        json!([c]),
        json!([{"name": "data", "emptyDir": {}}]),
    )]);
    assert!(uploads(&f).is_empty(), "{:#?}", uploads(&f));
}
