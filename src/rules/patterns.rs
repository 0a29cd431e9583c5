//! Detection vocabulary: upload paths, data-store images, schedulers (session
//! backends are in `sessions.rs`). Pure string functions, unit-tested in `tests.rs`.

/// Default mount-path patterns where apps keep user uploads and media.
/// `*` matches any run of characters (including `/`); matching is
/// case-insensitive and ignores a trailing `/`.
pub const DEFAULT_UPLOAD_PATHS: &[&str] = &[
    "*/upload",
    "*/upload/*",
    "*/uploads",
    "*/uploads/*",
    "*/media",
    "*/media/*",
    "*/user-files*",
    "*/user_files*",
    "*/userfiles*",
    "*/attachments",
    "*/attachments/*",
    "*/public/system*",
    "*/storage/app*",
    "*/sites/*/files*",
    "*/wp-content/uploads*",
    "*/content/images*",
    "*/mattermost/data*",
    // Nextcloud / ownCloud user files.
    "/var/www/html/data",
    "/var/www/html/data/*",
];

/// Glob match with `*` as the only wildcard (matches any characters,
/// including `/`). Case-insensitive; a trailing `/` on `text` is ignored.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let text = text.trim_end_matches('/');
    let text = if text.is_empty() { "/" } else { text };
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    let first = parts[0];
    if !rest.starts_with(first) {
        return false;
    }
    rest = &rest[first.len()..];
    let last = parts[parts.len() - 1];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(pos) => rest = &rest[pos + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Image names (last path component, without tag or digest) of software that
/// is stateful by design: databases, caches, queues, search engines, TSDBs,
/// consensus stores and object stores.
const STATEFUL_IMAGES: &[&str] = &[
    "postgres",
    "postgresql",
    "postgresql-repmgr",
    "postgresql-ha",
    "postgis",
    "timescaledb",
    "timescaledb-ha",
    "spilo",
    "mysql",
    "mysql-server",
    "percona",
    "percona-server",
    "percona-xtradb-cluster",
    "mariadb",
    "mariadb-galera",
    "mongo",
    "mongodb",
    "mongodb-sharded",
    "redis",
    "redis-cluster",
    "redis-sentinel",
    "redis-stack",
    "redis-stack-server",
    "valkey",
    "valkey-cluster",
    "valkey-sentinel",
    "keydb",
    "dragonfly",
    "memcached",
    "rabbitmq",
    "kafka",
    "cp-kafka",
    "zookeeper",
    "cp-zookeeper",
    "etcd",
    "elasticsearch",
    "opensearch",
    "solr",
    "nats",
    "nats-streaming",
    "cassandra",
    "scylla",
    "couchdb",
    "couchbase",
    "neo4j",
    "influxdb",
    "clickhouse",
    "clickhouse-server",
    "cockroach",
    "minio",
    "consul",
    "vault",
    "prometheus",
    "alertmanager",
    "pushgateway",
    "loki",
    "victoria-metrics",
    "victoria-logs",
];

/// Singleton cluster agents: not an application tier and not meant to be
/// scaled like one (they shard or leader-elect instead).
const CLUSTER_AGENT_IMAGES: &[&str] = &["kube-state-metrics", "cluster-autoscaler", "external-dns"];

/// `app.kubernetes.io/component` values of stateful-by-design components.
const STATEFUL_COMPONENTS: &[&str] = &[
    "database",
    "db",
    "cache",
    "session-store",
    "queue",
    "message-queue",
    "broker",
    "message-broker",
    "search",
    "datastore",
    "storage",
];

/// The repository name of an image reference: last path component without
/// tag or digest, lowercase. `quay.io/prometheus/node-exporter:v1` → `node-exporter`.
pub fn image_name(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let name = last.split(':').next().unwrap_or(last);
    name.to_ascii_lowercase()
}

/// Why an image is stateful by design, if it is.
pub fn stateful_image(image: &str) -> Option<&'static str> {
    let name = image_name(image);
    STATEFUL_IMAGES
        .iter()
        .chain(CLUSTER_AGENT_IMAGES)
        .find(|known| **known == name)
        .copied()
}

/// Whether a label value names stateful software (`app: redis`) or a
/// stateful component (`app.kubernetes.io/component: database`).
pub fn stateful_component(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    STATEFUL_COMPONENTS.contains(&v.as_str()) || STATEFUL_IMAGES.contains(&v.as_str())
}

/// Whether a name is one of the data-store names (for label `app`/`name`).
pub fn stateful_name(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    STATEFUL_IMAGES.contains(&v.as_str()) || CLUSTER_AGENT_IMAGES.contains(&v.as_str())
}

/// Whether a (container or Service) port name is only for metrics or probes.
pub fn metrics_port_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("metric")
        || matches!(
            n.as_str(),
            "prometheus"
                | "prom"
                | "probe"
                | "probes"
                | "health"
                | "healthz"
                | "healthcheck"
                | "liveness"
                | "readiness"
                | "pprof"
                | "debug"
                | "monitoring"
        )
}

fn norm_value(value: &str) -> String {
    value
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim()
        .to_ascii_lowercase()
}

fn local_path_value(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if v.is_empty() || v.contains("://") || v.starts_with("s3:") || v.starts_with("gs:") {
        return false;
    }
    if v == "/tmp" || v.starts_with("/tmp/") || v.starts_with("/dev/") {
        return false;
    }
    v.starts_with('/') || v.starts_with("./") || v.starts_with("../") || !v.contains(':')
}

/// If `NAME=value` sends uploads or media to local disk, a short description.
pub fn local_upload_env(name: &str, value: &str) -> Option<String> {
    let n = name.trim().to_ascii_uppercase();
    let v = norm_value(value);
    if v.is_empty() {
        return None;
    }
    let backend_hit = match n.as_str() {
        "CMD_IMAGE_UPLOAD_TYPE" => v == "filesystem",
        "FILESYSTEM_DISK" | "FILESYSTEM_DRIVER" | "FILESYSTEM_CLOUD" => {
            v == "local" || v == "public"
        }
        "ACTIVE_STORAGE_SERVICE" => v == "local",
        "MM_FILESETTINGS_DRIVERNAME" => v == "local",
        "REGISTRY_STORAGE" => v == "filesystem",
        "STORAGE" | "STORAGE_TYPE" | "STORAGE_BACKEND" | "STORAGE_DRIVER" | "FILE_STORAGE"
        | "FILE_STORAGE_TYPE" | "UPLOAD_STORAGE" | "UPLOADS_STORAGE" | "UPLOAD_TYPE"
        | "MEDIA_STORAGE" => matches!(v.as_str(), "local" | "filesystem" | "file" | "disk"),
        _ => false,
    };
    // Well-known "files live under this local directory" settings.
    let local_root = matches!(
        n.as_str(),
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY" | "STORAGE_LOCAL_ROOTDIR"
    ) && local_path_value(value);
    if backend_hit || local_root {
        return Some(format!("{}={}", name.trim(), value.trim()));
    }
    let about_uploads = n.contains("UPLOAD") || n.contains("MEDIA") || n.contains("ATTACHMENT");
    let is_dir_var = ["_DIR", "_PATH", "_FOLDER", "_ROOT", "_DIRECTORY"]
        .iter()
        .any(|s| n.ends_with(s));
    let temporary = n.contains("TMP") || n.contains("TEMP") || n.contains("CACHE");
    (about_uploads && is_dir_var && !temporary && local_path_value(value))
        .then(|| format!("{}={}", name.trim(), value.trim()))
}

/// Split a command line into words at whitespace and shell punctuation.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || ";&|()'\"`".contains(c))
        .filter(|w| !w.is_empty())
}

/// If the command/args start a scheduler in-process, a short description.
pub fn in_process_scheduler(argv: &[&str]) -> Option<String> {
    let all: Vec<&str> = argv.iter().flat_map(|a| words(a)).collect();
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    for w in &all {
        let b = base(w);
        match b.as_str() {
            "cron" | "crond" | "supercronic" | "go-crond" | "rqscheduler" | "rq-scheduler" => {
                return Some(format!("`{b}`"));
            }
            "schedule:work" | "schedule:run" => return Some(format!("`artisan {b}`")),
            _ => {}
        }
    }
    let has_celery = all.iter().any(|w| base(w) == "celery");
    if has_celery
        && all
            .iter()
            .any(|w| *w == "beat" || *w == "-B" || *w == "--beat")
    {
        return Some("`celery beat`".to_string());
    }
    None
}

/// Whether the command starts `supervisord`.
pub fn runs_supervisord(argv: &[&str]) -> bool {
    argv.iter()
        .flat_map(|a| words(a))
        .any(|w| w.rsplit('/').next() == Some("supervisord"))
}

/// A supervisord config (text) with a program that runs a scheduler.
pub fn supervisord_cron(text: &str) -> Option<String> {
    let mut program: Option<&str> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('[') && line.ends_with(']') {
            program = line[1..line.len() - 1].strip_prefix("program:");
            continue;
        }
        if let (Some(prog), Some((k, v))) = (program, line.split_once('='))
            && k.trim() == "command"
            && in_process_scheduler(&[v]).is_some()
        {
            return Some(format!("supervisord program `{prog}`"));
        }
    }
    None
}
