//! The rule catalogue: one table that names every rule, its severity, why it
//! matters and how to fix it. Findings, `stateless-operator rules`, SARIF rule
//! metadata and `docs/rules.md` are all generated from this table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much a finding matters. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hardening: worth fixing, never blocks scaling by itself.
    Low,
    /// Hurts availability or correctness once the app is scaled or redeployed.
    Medium,
    /// Breaks horizontal scaling, failover or rolling deploys.
    High,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

    /// The lowercase name used in JSON, on the command line and in docs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// SARIF `level` for this severity (`error`, `warning` or `note`).
    pub const fn sarif_level(self) -> &'static str {
        match self {
            Severity::Low => "note",
            Severity::Medium => "warning",
            Severity::High => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not `low`, `medium` or `high`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}` (valid: low, medium, high)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSeverity(s.to_string()))
    }
}

/// Stable identifier of a rule. The kebab-case name ([`RuleId::as_str`]) is
/// the public, stable spelling used in findings, waivers and `--rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    SessionAffinity,
    StickyIngress,
    HostPath,
    LocalUploadDir,
    PvcAppTier,
    InMemorySession,
    SingleReplica,
    WritableRootFs,
    InProcessScheduler,
    UnknownWaiver,
}

impl RuleId {
    /// Every rule, in catalogue order.
    pub const ALL: [RuleId; 10] = [
        RuleId::SessionAffinity,
        RuleId::StickyIngress,
        RuleId::HostPath,
        RuleId::LocalUploadDir,
        RuleId::PvcAppTier,
        RuleId::InMemorySession,
        RuleId::SingleReplica,
        RuleId::WritableRootFs,
        RuleId::InProcessScheduler,
        RuleId::UnknownWaiver,
    ];

    /// The stable kebab-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleId::SessionAffinity => "session-affinity",
            RuleId::StickyIngress => "sticky-ingress",
            RuleId::HostPath => "host-path",
            RuleId::LocalUploadDir => "local-upload-dir",
            RuleId::PvcAppTier => "pvc-app-tier",
            RuleId::InMemorySession => "in-memory-session",
            RuleId::SingleReplica => "single-replica",
            RuleId::WritableRootFs => "writable-root-fs",
            RuleId::InProcessScheduler => "in-process-scheduler",
            RuleId::UnknownWaiver => "unknown-waiver",
        }
    }

    /// The catalogue entry of this rule.
    pub fn info(self) -> &'static RuleInfo {
        // CATALOGUE is in RuleId::ALL order; the unit tests check that.
        &CATALOGUE[self as usize]
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{name}` (valid rules: {})", valid_rule_names())]
pub struct UnknownRule {
    pub name: String,
}

/// Comma-separated list of all rule names, for error messages.
pub fn valid_rule_names() -> String {
    RuleId::ALL.map(RuleId::as_str).join(", ")
}

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        RuleId::ALL
            .into_iter()
            .find(|id| id.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownRule {
                name: s.to_string(),
            })
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    /// Stable identifier; serializes as the kebab-case name.
    #[serde(rename = "name")]
    pub id: RuleId,
    pub severity: Severity,
    /// One line: what the rule reports.
    pub summary: &'static str,
    /// Why it matters for scaling, failover and rolling deploys.
    pub why: &'static str,
    /// How to fix it.
    pub remediation: &'static str,
    /// What exactly is detected (Markdown, for the docs).
    pub detects: &'static str,
}

impl RuleInfo {
    /// The stable kebab-case name.
    pub const fn name(&self) -> &'static str {
        self.id.as_str()
    }
}

/// The catalogue, in [`RuleId::ALL`] order.
pub static CATALOGUE: [RuleInfo; 10] = [
    RuleInfo {
        id: RuleId::SessionAffinity,
        severity: Severity::High,
        summary: "Service pins clients to one pod with `sessionAffinity: ClientIP`.",
        why: "ClientIP affinity sends every request of a client to the same pod, so new replicas \
              take no load from existing clients and a pod that is rolled or fails takes its \
              clients' sessions with it. It hides state that should live outside the pod.",
        remediation: "Remove `sessionAffinity` (default `None`) and keep session state out of the \
                      pod: sessions in Redis (the operator's `sessionStore`), identity in signed \
                      JWTs or cookies.",
        detects: "A `Service` with `spec.sessionAffinity: ClientIP` whose selector matches \
                  application-tier pods, or whose selector matches no workload in the input and \
                  does not look like a data store. Headless and `ExternalName` Services are \
                  skipped (kube-proxy does not balance them). A `StatelessApp` with \
                  `spec.service.sessionAffinity: ClientIP`.",
    },
    RuleInfo {
        id: RuleId::StickyIngress,
        severity: Severity::High,
        summary: "Load balancer or ingress pins clients to one pod (sticky cookie or IP hash).",
        why: "Edge stickiness routes a client to the same pod for the life of a cookie or IP, \
              so scaling out does not spread existing users, a rolling deploy or pod failure \
              logs those users out, and load piles up on old pods.",
        remediation: "Turn the stickiness off, then move the per-user state it protected out of \
                      the pod: sessions in Redis (the operator's `sessionStore`), identity in \
                      signed JWTs or cookie sessions, uploads in object storage. Per mechanism: \
                      delete the ingress-nginx `affinity`/`upstream-hash-by`, Traefik \
                      `sticky.cookie`, HAProxy `cookie-persistence`/`affinity` and \
                      `load-balance`/`balance-algorithm: source`, NGINX Inc. \
                      `nginx.com/sticky-cookie-services` and `nginx.org/lb-method: ip_hash` \
                      annotations; set `stickiness.enabled=false` in the AWS \
                      `target-group-attributes`; set Azure \
                      `appgw.ingress.kubernetes.io/cookie-based-affinity: \"false\"`; remove \
                      `sessionPersistence` from Gateway API route rules and `BackendLBPolicy`, \
                      `sessionAffinity` from Azure `RoutePolicy`, GKE `GCPBackendPolicy` and \
                      `BackendConfig` (or `NONE`); use a non-hash load balancer (`LeastRequest`, \
                      `RoundRobin`, `round-robin`, `least_request`) in Envoy Gateway \
                      `BackendTrafficPolicy`, Kong `KongUpstreamPolicy`/`KongIngress`, Emissary \
                      `Mapping`, NGINX `VirtualServer` and NGINX Gateway Fabric \
                      `UpstreamSettingsPolicy`, Istio `DestinationRule` and Contour `HTTPProxy`; \
                      on an OpenShift `Route` annotate \
                      `haproxy.router.openshift.io/disable_cookies: \"true\"` and \
                      `haproxy.router.openshift.io/balance: roundrobin` (or `random`), which \
                      a TLS passthrough route needs too, since its default is `source`.",
        detects: "ingress-nginx `nginx.ingress.kubernetes.io/affinity: cookie` and \
                  `upstream-hash-by` on a client address, cookie or session variable; NGINX \
                  Inc. `nginx.com/sticky-cookie-services`, `nginx.org/lb-method: ip_hash` (or a \
                  `hash` on a client key) and `VirtualServer`/`VirtualServerRoute` upstreams with \
                  `sessionCookie.enable` or such an `lb-method`; Traefik \
                  `traefik.ingress.kubernetes.io/service.sticky.cookie*` (and v1 `affinity`) on \
                  Services or Ingresses and `IngressRoute`/`TraefikService` `sticky.cookie`; \
                  HAProxy `haproxy.org/cookie-persistence`, `haproxy.org/load-balance: source`, \
                  HAProxy Ingress `haproxy-ingress.github.io/affinity: cookie` (legacy \
                  `ingress.kubernetes.io/affinity`) and `balance-algorithm: source`; AWS \
                  `alb.ingress.kubernetes.io/target-group-attributes` and \
                  `service.beta.kubernetes.io/aws-load-balancer-target-group-attributes` with \
                  `stickiness.enabled=true` (ALB cookies, NLB `source_ip`); Azure \
                  `appgw.ingress.kubernetes.io/cookie-based-affinity: \"true\"` and Application \
                  Gateway for Containers `RoutePolicy` `default.sessionAffinity`; GKE \
                  `BackendConfig` `spec.sessionAffinity.affinityType` and `GCPBackendPolicy` \
                  `default.sessionAffinity.type` other than `NONE`; Istio `DestinationRule` \
                  `consistentHash` with `httpCookie`, `useSourceIp` or a client header (top \
                  level, per port and per subset); Gateway API `HTTPRoute` and `GRPCRoute` rule \
                  `sessionPersistence` and `BackendLBPolicy` `sessionPersistence`; Envoy Gateway \
                  `BackendTrafficPolicy` `ConsistentHash` on `SourceIP`, `Cookie` or a client \
                  header; NGINX Gateway Fabric `UpstreamSettingsPolicy` \
                  `loadBalancingMethod: ip_hash`; Contour `HTTPProxy` `loadBalancerPolicy` \
                  `Cookie` or `RequestHash` on the source IP or a client header; Kong \
                  `KongUpstreamPolicy` `hashOn`/`hashOnFallback` and `KongIngress` \
                  `upstream.hash_on`/`hash_fallback` on a cookie, `ip`, `consumer` or a client \
                  header; Emissary `Mapping` `load_balancer` `ring_hash`/`maglev` with a \
                  cookie, `source_ip` or a client header; OpenShift `Route`s, whose HAProxy \
                  router sets a session cookie on every HTTP (plain, edge, re-encrypt) route \
                  by default unless `haproxy.router.openshift.io/disable_cookies` is `\"true\"` \
                  (reported at that annotation, the message saying it is the default), \
                  balances TLS passthrough routes by client IP unless \
                  `haproxy.router.openshift.io/balance` says otherwise, and honours \
                  `balance: source` on any route. A client header is one that carries the \
                  client's identity or session (`Authorization`, `Cookie`, `X-Forwarded-For`, \
                  `X-Real-IP`, or a name with session, user, client, token, auth, sticky, \
                  ...); hashing on other headers spreads clients and is not reported. These \
                  kinds are read as plain JSON; their CRDs are not needed. An edge object whose \
                  backend Services are all in the input and select only non-application pods \
                  (e.g. a database) is not reported; a backend that is not a Service (a \
                  `ServiceImport`, a Gateway whose routes are not resolved) counts as possibly \
                  the application.",
    },
    RuleInfo {
        id: RuleId::HostPath,
        severity: Severity::High,
        summary: "Application pod writes to a `hostPath` volume on the node.",
        why: "Data on a node's disk exists on that node only: replicas on other nodes see \
              different files, and a rescheduled or failed-over pod comes back without its data.",
        remediation: "Keep files in object storage (S3, GCS, MinIO) and sessions in Redis; use a \
                      managed database for anything durable.",
        detects: "A `hostPath` volume in an application pod template that is mounted writable \
                  by at least one container. Read-only host mounts (e.g. `/etc/localtime`) are \
                  not reported.",
    },
    RuleInfo {
        id: RuleId::LocalUploadDir,
        severity: Severity::High,
        summary: "User uploads or media are written to the pod's own disk.",
        why: "An upload written to one replica is missing on the others, so the next request \
              may 404; an `emptyDir` loses it on every rolling deploy and a `ReadWriteOnce` \
              claim pins the app to one node.",
        remediation: "Store uploads and media in object storage (S3, GCS, MinIO) and serve them \
                      from there or a CDN. On a StatelessApp, set `spec.objectStorage`: the \
                      operator injects the bucket, endpoint, region and the Secret's access keys \
                      as the variables S3 SDKs read (`S3_BUCKET`, `AWS_ACCESS_KEY_ID`, ...).",
        detects: "A writable `emptyDir`, `hostPath`, ephemeral or non-`ReadWriteMany` \
                  `persistentVolumeClaim` volume mounted at an upload path (patterns below, \
                  extendable with `--upload-path`), or an environment variable that points \
                  uploads at local disk (`UPLOAD_DIR`, `UPLOAD_PATH`, `MEDIA_ROOT`, \
                  `FILE_UPLOAD_DIR`, ... with a local path value; `CMD_IMAGE_UPLOAD_TYPE=filesystem`, \
                  `FILESYSTEM_DISK=local`, `ACTIVE_STORAGE_SERVICE=local`, \
                  `MM_FILESETTINGS_DRIVERNAME=local`, chartmuseum `STORAGE=local`, \
                  `REGISTRY_STORAGE=filesystem`), also through a referenced ConfigMap. \
                  For the images of the application catalogue (below), their documented data \
                  directories on such a volume, or on no volume at all (the container's \
                  writable layer). `ReadWriteMany` claims are shared by all replicas and are \
                  not reported.",
    },
    RuleInfo {
        id: RuleId::PvcAppTier,
        severity: Severity::High,
        summary: "Application tier mounts a per-node PersistentVolumeClaim or is a StatefulSet with claims.",
        why: "A `ReadWriteOnce` volume attaches to one node: a second replica or the new pod of a \
              rolling deploy cannot start elsewhere (Multi-Attach), so the app cannot scale out \
              and fails over only as fast as the volume detaches.",
        remediation: "Move the data the claim holds to a managed service: uploads to object \
                      storage, sessions to Redis, records to a database; then drop the claim.",
        detects: "A `persistentVolumeClaim` volume in an application pod template whose claim is \
                  `ReadWriteOnce`/`ReadWriteOncePod` or not in the input (assumed \
                  `ReadWriteOnce`), and `volumeClaimTemplates` of an application-tier \
                  `StatefulSet`. `ReadWriteMany`/`ReadOnlyMany` claims and claims mounted only \
                  read-only are not reported.",
    },
    RuleInfo {
        id: RuleId::InMemorySession,
        severity: Severity::High,
        summary: "Sessions are kept in process memory or on local files.",
        why: "A session stored in one pod is unknown to the others: without sticky routing \
              users are logged out at random, and with it every rolling deploy, scale-in or \
              pod failure logs users out.",
        remediation: "Move sessions to the managed Redis: give the app a `sessionStore` (the \
                      operator puts its URL in `REDIS_URL`) and select the Redis backend \
                      (`SESSION_STORE=redis`, `SESSION_DRIVER=redis`, ...); or keep no session \
                      on the server with a signed (or encrypted) cookie session or a JWT.",
        detects: "A setting that selects a session backend inside the pod, wherever the pod's \
                  configuration is visible: container `env` values (direct or \
                  `configMapKeyRef`), the data of ConfigMaps read through `envFrom`, the keys \
                  and file contents of mounted ConfigMaps, options in `*_OPTS`/`*_OPTIONS`/\
                  `*_ARGS` variables, and container `command`/`args` (`--session-store=memory`, \
                  `--session-store memory`, `-Dsession.store=memory`, `SESSION_STORE=memory` in \
                  `sh -c`, PHP `-d session.save_handler=files`). A session-backend key is `SESSION` \
                  or `SESSIONS` followed by `STORE`, `DRIVER`, `BACKEND`, `TYPE`, `ENGINE`, \
                  `STORAGE`, `HANDLER` or `PROVIDER` (optionally after `STORE`/`STORAGE`/`SAVE`/\
                  `BACKEND`), with any prefix, in any case, with `_`, `-`, `.` or camelCase \
                  separators: `SESSION_STORE`, `SESSIONS_STORE`, `session.store`, \
                  `session-store`, `sessionStore`, `SESSION_STORE_TYPE`, `session.save_handler`, \
                  `GF_SESSION_PROVIDER`, `GITEA__session__PROVIDER`, an ini/TOML `[session]` \
                  `provider`/`store`/`driver`, a nested YAML/JSON `session: {store: ...}`; keys \
                  about session cookies are never one. Pod-local values (case-insensitive, `-`, \
                  `_` and spaces ignored): memory, in-memory, inmemory, mem, memstore, \
                  MemoryStore, memory_store, locmem, local, file, files, filesystem, file_store, \
                  disk, Laravel `array`, `apc`/`apcu`, `memory://` and `file://` URLs, and the last \
                  part of a module path (`django.contrib.sessions.backends.file`). Cache-backed \
                  sessions (Django `...backends.cache`, Rails `:cache_store`, `cache`) are reported \
                  when the same pod's cache is local: `CACHE_BACKEND=locmem://` or `file://`, a \
                  `LocMemCache`/`FileBasedCache` in `CACHES`, Rails `cache_store` \
                  `:memory_store`/`:file_store`, `CACHE_DRIVER=file|array`. Framework forms: \
                  Laravel `SESSION_DRIVER=file|array|apc`, Django \
                  `SESSION_ENGINE=django.contrib.sessions.backends.file`, Flask-Session \
                  `SESSION_TYPE=filesystem`, express-session `SESSION_STORE=MemoryStore` and \
                  `new session.MemoryStore()` / `require('memorystore')` in mounted code, Rails \
                  `SESSION_STORE=memory_store` and `config.session_store :memory_store` in a mounted \
                  initializer, PHP `session.save_handler = files` (php.ini, `php_value`, FPM \
                  `php_admin_value[...]`) and `PHP_SESSION_SAVE_HANDLER=files`, Keycloak \
                  `KC_CACHE=local`, and the session settings of the application catalogue \
                  (below) on its images. Not reported: shared or client-side backends (redis, \
                  memcached, database, jdbc, mongodb, dynamodb, hazelcast, cookie, \
                  `signed_cookies`, `cookie_store`, jwt), Django `cached_db`, Spring \
                  `spring.session.store-type=none`, caches that are not sessions \
                  (`CACHE_DRIVER=file` alone), other session keys (`SESSION_TIMEOUT`, \
                  `SESSION_COOKIE_NAME`, `SESSION_SECRET`, `session.save_path`), commented-out \
                  lines, Secrets (not read) and session stores chosen in code.",
    },
    RuleInfo {
        id: RuleId::SingleReplica,
        severity: Severity::Medium,
        summary: "Application runs fewer than 2 replicas and nothing scales it.",
        why: "With one replica every rolling deploy, node drain or crash is an outage, and \
              state hidden in the pod never shows up as a problem until the day it is scaled.",
        remediation: "Run at least 2 replicas, or add a HorizontalPodAutoscaler (or KEDA \
                      ScaledObject) with `maxReplicas >= 2`, after moving state out of the pod.",
        detects: "An application-tier workload with `replicas` below 2 (an omitted `replicas` \
                  means 1) and no HorizontalPodAutoscaler or KEDA `ScaledObject` in the same \
                  namespace that targets it with a maximum of at least 2; a bare `Pod`; a \
                  `StatelessApp` whose `spec.replicas.max` is below 2.",
    },
    RuleInfo {
        id: RuleId::WritableRootFs,
        severity: Severity::Low,
        summary: "Container root filesystem is writable.",
        why: "A writable root filesystem lets the app quietly keep files inside the container, \
              state that is lost on every restart and differs between replicas; making it \
              read-only surfaces such writes early.",
        remediation: "Set `securityContext.readOnlyRootFilesystem: true` and mount an `emptyDir` \
                      only for scratch paths such as `/tmp`; keep real data in object storage, \
                      Redis or a database.",
        detects: "A container (not an init container) of an application pod whose \
                  `securityContext.readOnlyRootFilesystem` is not `true`. Not evaluated for \
                  `StatelessApp`, whose container security context is set by the operator.",
    },
    RuleInfo {
        id: RuleId::InProcessScheduler,
        severity: Severity::Medium,
        summary: "The web pod runs cron or a job scheduler next to the server.",
        why: "Every replica runs its own copy of the schedule, so jobs run N times after \
              scaling out, and a job in flight dies with the pod on each rolling deploy.",
        remediation: "Run scheduled work once per cluster: a Kubernetes CronJob, or a single \
                      queue worker/scheduler Deployment fed by a queue (Redis, SQS). On a \
                      StatelessApp, list the jobs in `spec.schedules` (name, cron `schedule`, \
                      `command`): the operator runs each as a CronJob of the app's image with its \
                      env, session store and keys, `concurrencyPolicy: Forbid` by default; \
                      queue consumers (`celery worker`) go in `spec.workers`, a Deployment of \
                      their own with its own HPA. The web pods keep only the server.",
        detects: "A container of an application pod whose command or args run `cron`, `crond`, \
                  `supercronic`, `go-crond`, `php artisan schedule:work|schedule:run`, \
                  `celery beat` (or `celery worker -B`) or `rqscheduler`, or `supervisord` with a \
                  mounted ConfigMap that defines a cron program; on a StatelessApp, also the \
                  `command` and `args` of each of its `spec.workers`.",
    },
    RuleInfo {
        id: RuleId::UnknownWaiver,
        severity: Severity::Low,
        summary: "A `stateless.dev/allow` waiver names a rule that does not exist.",
        why: "A misspelt waiver waives nothing: the finding it was meant to silence still fails \
              CI or admission, and a waiver written for a rule that was renamed stops working \
              without a word. Saying so, with the valid names, makes the typo a one-line fix.",
        remediation: "Spell the rule as `stateless-operator rules` lists it (comma-separated, or \
                      `*` for every rule), or drop the name from the annotation.",
        detects: "Any object whose `metadata.annotations[\"stateless.dev/allow\"]` contains a \
                  name (separated by commas or spaces) that is neither `*` nor a rule of this \
                  catalogue (case-insensitive). One finding per object, at that annotation, \
                  naming every unknown name and the valid rules. Severity `low`: `lint` counts it \
                  (at the default `--min-severity low` it exits 1), the admission webhook only \
                  warns (its default deny severity is above `low`), and the controller reports it \
                  in the StatelessApp's status with the other findings. The valid names in the \
                  same annotation still waive their rules.",
    },
];
