//! The finding sink and the workload (pod template) rules.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use super::apps::{self, ContainerView, MountView};
use super::model::{Index, Kind, Replicas, Workload, arr_at, at, name_of, scalar_text, str_at};
use super::patterns;
use super::sessions::{self, LocalSession, SessionContext};
use super::{Config, Finding, Object, RuleId, WAIVER_ANNOTATION, WAIVER_REASON_ANNOTATION};

/// Collects findings, filling in object identity, severity, remediation,
/// source and waiver from the catalogue and the object.
pub(crate) struct Sink<'a> {
    objects: &'a [Object],
    config: &'a Config,
    seen: HashSet<(usize, RuleId, String)>,
    findings: Vec<Finding>,
}

impl<'a> Sink<'a> {
    pub fn new(objects: &'a [Object], config: &'a Config) -> Self {
        Sink {
            objects,
            config,
            seen: HashSet::new(),
            findings: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        self.config
    }

    pub fn runs(&self, rule: RuleId) -> bool {
        self.config.runs(rule)
    }

    pub fn push(&mut self, obj: usize, rule: RuleId, path: String, message: String) {
        if !self.runs(rule) || !self.seen.insert((obj, rule, path.clone())) {
            return;
        }
        let Some(object) = self.objects.get(obj) else {
            return;
        };
        let v = &object.value;
        let info = rule.info();
        let (waived, waiver_reason) = waiver(v, rule);
        self.findings.push(Finding {
            rule,
            severity: info.severity,
            kind: str_at(v, &["kind"]).unwrap_or("").to_string(),
            namespace: str_at(v, &["metadata", "namespace"]).map(str::to_string),
            name: name_of(v).to_string(),
            path,
            message,
            remediation: Cow::Borrowed(info.remediation),
            file: object.source.as_ref().map(|s| s.file.clone()),
            line: object.source.as_ref().map(|s| s.line),
            waived,
            waiver_reason,
        });
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }
}

/// The names of a waiver annotation (comma- or space-separated).
fn waiver_names(allow: &str) -> impl Iterator<Item = &str> {
    allow
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|r| !r.is_empty())
}

/// Whether `v` waives `rule`, and the reason given.
fn waiver(v: &Value, rule: RuleId) -> (bool, Option<String>) {
    // A StatelessApp that may mount persistent volumes says so (with its
    // reason) in its spec; the CRD refuses such volumes without it.
    if rule == RuleId::PvcAppTier
        && str_at(v, &["kind"]) == Some(crate::crd::KIND)
        && let Some(reason) = str_at(v, &["spec", "policy", "allowPersistentVolumes", "reason"])
    {
        let reason = reason.trim();
        return (true, (!reason.is_empty()).then(|| reason.to_string()));
    }
    let Some(allow) = str_at(v, &["metadata", "annotations", WAIVER_ANNOTATION]) else {
        return (false, None);
    };
    let waived = waiver_names(allow).any(|r| r == "*" || r.eq_ignore_ascii_case(rule.as_str()));
    if !waived {
        return (false, None);
    }
    let reason = str_at(v, &["metadata", "annotations", WAIVER_REASON_ANNOTATION])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    (true, reason)
}

/// `Kind name` for messages.
fn label(w: &Workload<'_>) -> String {
    format!("{} `{}`", w.kind_name, w.name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// ReadWriteMany / ReadOnlyMany: shared by every node.
    Shared,
    /// ReadWriteOnce / ReadWriteOncePod.
    Single(&'static str),
    /// Claim not in the input (or no access modes): assumed ReadWriteOnce.
    Unknown,
}

fn access_of(modes: &[Value]) -> Access {
    let modes: Vec<&str> = modes.iter().filter_map(Value::as_str).collect();
    if modes
        .iter()
        .any(|m| *m == "ReadWriteMany" || *m == "ReadOnlyMany")
    {
        Access::Shared
    } else if modes.contains(&"ReadWriteOncePod") {
        Access::Single("ReadWriteOncePod")
    } else if modes.contains(&"ReadWriteOnce") {
        Access::Single("ReadWriteOnce")
    } else {
        Access::Unknown
    }
}

#[derive(Debug, Clone)]
enum VolKind<'a> {
    HostPath(&'a str),
    EmptyDir,
    Ephemeral,
    Claim {
        claim: &'a str,
        access: Access,
        read_only: bool,
        /// Bound PersistentVolume on one node: (PV name, `hostPath`/`local` path).
        node_local: Option<(&'a str, &'a str)>,
    },
    ClaimTemplate {
        access: Access,
    },
    ConfigMap(&'a str),
    Other,
}

#[derive(Debug, Clone)]
struct Volume<'a> {
    name: &'a str,
    kind: VolKind<'a>,
    path: String,
}

impl Volume<'_> {
    /// Volumes that hold files written by the app on a node or per pod.
    fn local_writable(&self) -> bool {
        match &self.kind {
            VolKind::HostPath(_) | VolKind::EmptyDir | VolKind::Ephemeral => true,
            VolKind::Claim {
                access, read_only, ..
            } => *access != Access::Shared && !read_only,
            VolKind::ClaimTemplate { access } => *access != Access::Shared,
            VolKind::ConfigMap(_) | VolKind::Other => false,
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            VolKind::HostPath(p) => format!("hostPath `{p}`"),
            VolKind::EmptyDir => "emptyDir (lost on every restart, one copy per pod)".to_string(),
            VolKind::Ephemeral => "ephemeral volume (one copy per pod)".to_string(),
            VolKind::Claim { claim, access, .. } => match access {
                Access::Single(mode) => format!("{mode} claim `{claim}`"),
                _ => format!("claim `{claim}` (not in the input, assumed ReadWriteOnce)"),
            },
            VolKind::ClaimTemplate { .. } => "per-pod volume claim template".to_string(),
            VolKind::ConfigMap(n) => format!("ConfigMap `{n}`"),
            VolKind::Other => "volume".to_string(),
        }
    }
}

fn volumes<'a>(index: &Index<'a>, w: &'a Workload<'a>) -> Vec<Volume<'a>> {
    let mut out = Vec::new();
    for (i, v) in arr_at(&w.pod_spec, &["volumes"]).iter().enumerate() {
        let name = str_at(v, &["name"]).unwrap_or("");
        let kind = if let Some(p) = at(v, &["hostPath"]) {
            VolKind::HostPath(str_at(p, &["path"]).unwrap_or(""))
        } else if v.get("emptyDir").is_some() {
            VolKind::EmptyDir
        } else if v.get("ephemeral").is_some() {
            VolKind::Ephemeral
        } else if let Some(pvc) = at(v, &["persistentVolumeClaim"]) {
            let claim = str_at(pvc, &["claimName"]).unwrap_or("");
            let found = index.claim(w.obj, w.ns, claim);
            let access = found
                .map(|(_, c)| access_of(arr_at(c, &["spec", "accessModes"])))
                .unwrap_or(Access::Unknown);
            let node_local = found
                .and_then(|(ci, c)| index.bound_volume(ci, c, w.ns))
                .and_then(|pv| {
                    let path = str_at(pv, &["spec", "hostPath", "path"])
                        .or_else(|| str_at(pv, &["spec", "local", "path"]))?;
                    Some((name_of(pv), path))
                });
            let read_only = at(pvc, &["readOnly"]).and_then(Value::as_bool) == Some(true);
            VolKind::Claim {
                claim,
                access,
                read_only,
                node_local,
            }
        } else if let Some(cm) = str_at(v, &["configMap", "name"]) {
            VolKind::ConfigMap(cm)
        } else {
            VolKind::Other
        };
        out.push(Volume {
            name,
            kind,
            path: w.volume_path(i),
        });
    }
    if w.kind == Kind::StatefulSet {
        let obj = &index.objects[w.obj].value;
        for (i, t) in arr_at(obj, &["spec", "volumeClaimTemplates"])
            .iter()
            .enumerate()
        {
            out.push(Volume {
                name: str_at(t, &["metadata", "name"]).unwrap_or(""),
                kind: VolKind::ClaimTemplate {
                    access: access_of(arr_at(t, &["spec", "accessModes"])),
                },
                path: format!("spec.volumeClaimTemplates[{i}]"),
            });
        }
    }
    out
}

struct Mount<'a> {
    /// Index of the container that mounts it.
    container: usize,
    volume: &'a str,
    mount_path: &'a str,
    read_only: bool,
    path: String,
}

fn containers<'a>(w: &'a Workload<'a>) -> &'a [Value] {
    arr_at(&w.pod_spec, &["containers"])
}

fn mounts<'a>(w: &'a Workload<'a>) -> Vec<Mount<'a>> {
    let mut out = Vec::new();
    for (ci, c) in containers(w).iter().enumerate() {
        for (mi, m) in arr_at(c, &["volumeMounts"]).iter().enumerate() {
            out.push(Mount {
                container: ci,
                volume: str_at(m, &["name"]).unwrap_or(""),
                mount_path: str_at(m, &["mountPath"]).unwrap_or(""),
                read_only: at(m, &["readOnly"]).and_then(Value::as_bool) == Some(true),
                path: format!("{}.volumeMounts[{mi}]", w.container_path(ci)),
            });
        }
    }
    out
}

/// One environment variable as the container sees it.
struct EnvVar {
    name: String,
    value: String,
    path: String,
    /// `ConfigMap x` when the value comes from a ConfigMap.
    via: Option<String>,
}

fn env_vars(index: &Index<'_>, w: &Workload<'_>, ci: usize, c: &Value) -> Vec<EnvVar> {
    let cpath = w.container_path(ci);
    let mut out = Vec::new();
    for (k, e) in arr_at(c, &["env"]).iter().enumerate() {
        let Some(name) = str_at(e, &["name"]) else {
            continue;
        };
        if let Some(val) = e.get("value").and_then(scalar_text) {
            out.push(EnvVar {
                name: name.to_string(),
                value: val.into_owned(),
                path: format!("{cpath}.env[{k}].value"),
                via: None,
            });
        } else if let (Some(cm), Some(key)) = (
            str_at(e, &["valueFrom", "configMapKeyRef", "name"]),
            str_at(e, &["valueFrom", "configMapKeyRef", "key"]),
        ) && let Some(val) = index
            .config_map_data(w.obj, w.ns, cm)
            .and_then(|d| d.get(key))
            .and_then(scalar_text)
        {
            out.push(EnvVar {
                name: name.to_string(),
                value: val.into_owned(),
                path: format!("{cpath}.env[{k}].valueFrom.configMapKeyRef"),
                via: Some(format!("ConfigMap `{cm}` key `{key}`")),
            });
        }
    }
    for (k, e) in arr_at(c, &["envFrom"]).iter().enumerate() {
        let Some(cm) = str_at(e, &["configMapRef", "name"]) else {
            continue;
        };
        let prefix = str_at(e, &["prefix"]).unwrap_or("");
        let Some(data) = index.config_map_data(w.obj, w.ns, cm) else {
            continue;
        };
        for (key, val) in data {
            if let Some(val) = scalar_text(val) {
                out.push(EnvVar {
                    name: format!("{prefix}{key}"),
                    value: val.into_owned(),
                    path: format!("{cpath}.envFrom[{k}].configMapRef"),
                    via: Some(format!("ConfigMap `{cm}` key `{key}` via envFrom")),
                });
            }
        }
    }
    out
}

fn via(e: &EnvVar) -> String {
    e.via
        .as_ref()
        .map(|v| format!(" (from {v})"))
        .unwrap_or_default()
}

pub(crate) fn run_workload_rules(index: &Index<'_>, out: &mut Sink<'_>) {
    for w in &index.workloads {
        if !w.in_scope() {
            continue;
        }
        let vols = volumes(index, w);
        let mts = mounts(w);
        host_path(w, &vols, &mts, out);
        pvc_app_tier(w, &vols, &mts, out);
        local_upload_dir(index, w, &vols, &mts, out);
        in_memory_session(index, w, &vols, &mts, out);
        if w.serves_traffic() {
            single_replica(index, w, out);
        }
        writable_root_fs(w, out);
        in_process_scheduler(index, w, &vols, &mts, out);
    }
}

fn mounted_writable(vol: &Volume<'_>, mts: &[Mount<'_>]) -> Vec<String> {
    let mut paths: Vec<String> = mts
        .iter()
        .filter(|m| m.volume == vol.name && !m.read_only)
        .map(|m| format!("`{}`", m.mount_path))
        .collect();
    paths.dedup();
    paths
}

fn host_path(w: &Workload<'_>, vols: &[Volume<'_>], mts: &[Mount<'_>], out: &mut Sink<'_>) {
    if !out.runs(RuleId::HostPath) {
        return;
    }
    for vol in vols {
        let (field, host) = match &vol.kind {
            VolKind::HostPath(host) => ("hostPath", format!("node directory `{host}`")),
            VolKind::Claim {
                claim,
                node_local: Some((pv, host)),
                read_only: false,
                ..
            } => (
                "persistentVolumeClaim",
                format!(
                    "node directory `{host}` (claim `{claim}` is bound to PersistentVolume `{pv}`)"
                ),
            ),
            _ => continue,
        };
        let at = mounted_writable(vol, mts);
        if at.is_empty() {
            continue;
        }
        out.push(
            w.obj,
            RuleId::HostPath,
            format!("{}.{field}", vol.path),
            format!(
                "{} writes to {host} (volume `{}`, mounted at {}): each node has its own copy \
                 and a rescheduled pod loses it.",
                label(w),
                vol.name,
                at.join(", ")
            ),
        );
    }
}

fn pvc_app_tier(w: &Workload<'_>, vols: &[Volume<'_>], mts: &[Mount<'_>], out: &mut Sink<'_>) {
    if !out.runs(RuleId::PvcAppTier) {
        return;
    }
    for vol in vols {
        match &vol.kind {
            VolKind::Claim {
                access, read_only, ..
            } if *access != Access::Shared && !read_only => {
                let at = mounted_writable(vol, mts);
                if at.is_empty() {
                    continue;
                }
                out.push(
                    w.obj,
                    RuleId::PvcAppTier,
                    format!("{}.persistentVolumeClaim", vol.path),
                    format!(
                        "{} mounts {} at {}: the volume attaches to one node, so replicas and \
                         the new pods of a rolling deploy cannot start elsewhere.",
                        label(w),
                        vol.describe(),
                        at.join(", ")
                    ),
                );
            }
            VolKind::ClaimTemplate { access } if *access != Access::Shared => {
                out.push(
                    w.obj,
                    RuleId::PvcAppTier,
                    vol.path.clone(),
                    format!(
                        "{} keeps a per-pod volume `{}`: each replica has different data and \
                         pods are tied to their volumes.",
                        label(w),
                        vol.name
                    ),
                );
            }
            _ => {}
        }
    }
}

/// The catalogue's view of container `ci`: its own mounts (with whether each
/// writes to a node-local volume), its environment, the settings of the
/// ConfigMap files it mounts, and whether its root filesystem is read-only.
fn container_view<'a>(
    index: &Index<'_>,
    w: &Workload<'_>,
    vols: &[Volume<'_>],
    mts: &[Mount<'_>],
    ci: usize,
    c: &Value,
    image: &'a str,
) -> ContainerView<'a> {
    let mut mounts = Vec::new();
    let mut settings: Vec<(String, String)> = env_vars(index, w, ci, c)
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    for m in mts.iter().filter(|m| m.container == ci) {
        let vol = vols.iter().find(|v| v.name == m.volume);
        let local = vol
            .filter(|v| !m.read_only && v.local_writable())
            .map(Volume::describe);
        if let Some(VolKind::ConfigMap(cm)) = vol.map(|v| &v.kind)
            && let Some(data) = index.config_map_data(w.obj, w.ns, cm)
        {
            for text in data.values().filter_map(scalar_text) {
                settings.extend(apps::ini_settings(&text));
            }
        }
        mounts.push(MountView {
            mount_path: m.mount_path.to_string(),
            field: format!("{}.mountPath", m.path),
            volume: m.volume.to_string(),
            local,
        });
    }
    ContainerView {
        who: holder(w, c),
        image,
        image_field: format!("{}.image", w.container_path(ci)),
        mounts,
        settings,
        read_only_root: root_read_only(c),
    }
}

/// Whether the container sets `securityContext.readOnlyRootFilesystem: true`.
fn root_read_only(c: &Value) -> bool {
    match at(c, &["securityContext", "readOnlyRootFilesystem"]) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn local_upload_dir(
    index: &Index<'_>,
    w: &Workload<'_>,
    vols: &[Volume<'_>],
    mts: &[Mount<'_>],
    out: &mut Sink<'_>,
) {
    if !out.runs(RuleId::LocalUploadDir) {
        return;
    }
    // Catalogued apps first. The mounts that hold an app's catalogued paths
    // are judged by the app's layout (object storage settings, shared
    // volumes), so the upload-path patterns below skip them.
    let mut claimed: HashSet<String> = HashSet::new();
    let mut claimed_settings: HashSet<(usize, String)> = HashSet::new();
    for (ci, c) in containers(w).iter().enumerate() {
        let Some(image) = str_at(c, &["image"]) else {
            continue;
        };
        let Some(app) = apps::app_for_image(image) else {
            continue;
        };
        let view = container_view(index, w, vols, mts, ci, c, image);
        let judgement = apps::local_state(app, &view);
        claimed.extend(judgement.claimed);
        claimed_settings.extend(judgement.claimed_settings.into_iter().map(|k| (ci, k)));
        for hit in judgement.hits {
            out.push(w.obj, RuleId::LocalUploadDir, hit.field, hit.message);
        }
    }
    for m in mts {
        if m.read_only || claimed.contains(&format!("{}.mountPath", m.path)) {
            continue;
        }
        let Some(vol) = vols.iter().find(|v| v.name == m.volume) else {
            continue;
        };
        if !vol.local_writable() {
            continue;
        }
        let Some(pattern) = out
            .config()
            .upload_paths
            .iter()
            .find(|p| patterns::glob_match(p, m.mount_path))
            .cloned()
        else {
            continue;
        };
        out.push(
            w.obj,
            RuleId::LocalUploadDir,
            format!("{}.mountPath", m.path),
            format!(
                "{} keeps uploads in `{}` (matches `{pattern}`) on {}: other replicas do not \
                 see these files.",
                label(w),
                m.mount_path,
                vol.describe()
            ),
        );
    }
    for (ci, c) in containers(w).iter().enumerate() {
        for e in env_vars(index, w, ci, c) {
            if claimed_settings.contains(&(ci, e.name.clone())) {
                continue;
            }
            if let Some(hit) = patterns::local_upload_env(&e.name, &e.value) {
                out.push(
                    w.obj,
                    RuleId::LocalUploadDir,
                    e.path.clone(),
                    format!(
                        "{} stores uploads on local disk: `{hit}`{}.",
                        label(w),
                        via(&e)
                    ),
                );
            }
        }
    }
}

/// ConfigMap volumes that some container mounts, with their data.
fn mounted_config_maps<'a>(
    index: &Index<'a>,
    w: &Workload<'_>,
    vols: &'a [Volume<'a>],
    mts: &[Mount<'_>],
) -> Vec<(&'a Volume<'a>, &'a str, &'a serde_json::Map<String, Value>)> {
    vols.iter()
        .filter_map(|vol| match vol.kind {
            VolKind::ConfigMap(cm) if mts.iter().any(|m| m.volume == vol.name) => index
                .config_map_data(w.obj, w.ns, cm)
                .map(|data| (vol, cm, data)),
            _ => None,
        })
        .collect()
}

/// Who holds a setting, for messages: ``Container `web` of Deployment `shop` ``,
/// or the StatelessApp itself (its spec is its one container).
fn holder(w: &Workload<'_>, c: &Value) -> String {
    if w.kind == Kind::StatelessApp {
        label(w)
    } else {
        format!(
            "Container `{}` of {}",
            str_at(c, &["name"]).unwrap_or("?"),
            label(w)
        )
    }
}

fn session_message(who: &str, hit: &LocalSession, found: &str) -> String {
    let because = hit
        .because
        .as_ref()
        .map(|b| format!(" (and `{b}` keeps that cache in the pod)"))
        .unwrap_or_default();
    format!(
        "{who} keeps sessions {}: {found}{because}; other replicas do not have them.",
        hit.place.describe()
    )
}

/// The `command` and `args` of a container, each element with its field path.
fn argv_of<'a>(cpath: &str, c: &'a Value) -> (Vec<String>, Vec<&'a str>) {
    let mut paths = Vec::new();
    let mut argv = Vec::new();
    for key in ["command", "args"] {
        for (i, a) in arr_at(c, &[key]).iter().enumerate() {
            if let Some(a) = a.as_str() {
                paths.push(format!("{cpath}.{key}[{i}]"));
                argv.push(a);
            }
        }
    }
    (paths, argv)
}

fn in_memory_session(
    index: &Index<'_>,
    w: &Workload<'_>,
    vols: &[Volume<'_>],
    mts: &[Mount<'_>],
    out: &mut Sink<'_>,
) {
    if !out.runs(RuleId::InMemorySession) {
        return;
    }
    // What the pod says about its cache, for "sessions in the cache" backends.
    let mut pod_ctx = SessionContext::default();
    for (ci, c) in containers(w).iter().enumerate() {
        let cpath = w.container_path(ci);
        let env = env_vars(index, w, ci, c);
        let (arg_paths, argv) = argv_of(&cpath, c);
        let args = sessions::argv_settings(&argv);
        let mut ctx = SessionContext::default();
        for e in &env {
            ctx.observe(&e.name, &e.value, &format!("{}={}", e.name, e.value));
        }
        for a in &args {
            ctx.observe(&a.key, &a.value, &a.text);
        }
        if pod_ctx.local_cache.is_none() {
            pod_ctx = ctx.clone();
        }
        let who = holder(w, c);
        // Catalogued apps first, so that a setting the generic vocabulary
        // also knows is reported with the app and its documentation.
        if let Some(image) = str_at(c, &["image"])
            && let Some(app) = apps::app_for_image(image)
        {
            let env_fields: Vec<(String, String, String)> = env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone(), e.path.clone()))
                .collect();
            let args: Vec<(&str, String)> = argv
                .iter()
                .copied()
                .zip(arg_paths.iter().cloned())
                .collect();
            for hit in apps::session_hits(app, &who, image, &env_fields, &args) {
                out.push(w.obj, RuleId::InMemorySession, hit.field, hit.message);
            }
        }
        for e in &env {
            let hit = sessions::session_setting(&e.name, &e.value, &ctx)
                .map(|hit| {
                    let found = format!("env `{}`{}", hit.setting, via(e));
                    (hit, found)
                })
                .or_else(|| {
                    if !sessions::options_var(&e.name) {
                        return None;
                    }
                    let (_, hit) = sessions::session_in_argv(&[e.value.as_str()], &ctx)?;
                    let found = format!("`{}` in env `{}`{}", hit.setting, e.name, via(e));
                    Some((hit, found))
                });
            if let Some((hit, found)) = hit {
                out.push(
                    w.obj,
                    RuleId::InMemorySession,
                    e.path.clone(),
                    session_message(&who, &hit, &found),
                );
            }
        }
        if let Some((i, hit)) = sessions::session_in_argv(&argv, &ctx)
            && let Some(path) = arg_paths.get(i)
        {
            let found = format!("argument `{}`", hit.setting);
            out.push(
                w.obj,
                RuleId::InMemorySession,
                path.clone(),
                session_message(&who, &hit, &found),
            );
        }
    }
    for (vol, cm, data) in mounted_config_maps(index, w, vols, mts) {
        let at = mts
            .iter()
            .find(|m| m.volume == vol.name)
            .map(|m| format!(" (mounted at `{}`)", m.mount_path))
            .unwrap_or_default();
        for (key, val) in data {
            let Some(text) = scalar_text(val) else {
                continue;
            };
            // A key is a file; `SESSION_STORE` holding `memory` is a setting too.
            let single = !text.trim().contains('\n');
            let hit = single
                .then(|| sessions::session_setting(key, &text, &pod_ctx))
                .flatten()
                .or_else(|| sessions::session_in_text(key, &text, &pod_ctx));
            if let Some(hit) = hit {
                let found = format!(
                    "`{}` in ConfigMap `{cm}` key `{key}`{at}",
                    hit.setting.trim()
                );
                out.push(
                    w.obj,
                    RuleId::InMemorySession,
                    format!("{}.configMap", vol.path),
                    session_message(&label(w), &hit, &found),
                );
            }
        }
    }
}

fn single_replica(index: &Index<'_>, w: &Workload<'_>, out: &mut Sink<'_>) {
    if !out.runs(RuleId::SingleReplica) {
        return;
    }
    let (count, path, what) = match w.replicas {
        Replicas::Fixed { count, explicit } => (
            count,
            "spec.replicas",
            if explicit {
                format!("`replicas: {count}`")
            } else {
                "no `replicas` (defaults to 1)".to_string()
            },
        ),
        Replicas::BarePod => (1, "kind", "a bare Pod (never rescheduled)".to_string()),
        Replicas::Range { max } => (max, "spec.replicas.max", format!("`replicas.max: {max}`")),
    };
    if count >= 2 {
        return;
    }
    if w.kind != Kind::Pod && index.scaler_max(w).is_some_and(|max| max >= 2) {
        return;
    }
    out.push(
        w.obj,
        RuleId::SingleReplica,
        path.to_string(),
        format!(
            "{} runs {what} and no autoscaler scales it to 2 or more: every deploy, drain or \
             crash is downtime.",
            label(w)
        ),
    );
}

fn writable_root_fs(w: &Workload<'_>, out: &mut Sink<'_>) {
    if !out.runs(RuleId::WritableRootFs) || w.kind == Kind::StatelessApp {
        return;
    }
    for (ci, c) in containers(w).iter().enumerate() {
        if root_read_only(c) {
            continue;
        }
        let cname = str_at(c, &["name"]).unwrap_or("?");
        out.push(
            w.obj,
            RuleId::WritableRootFs,
            format!("{}.securityContext.readOnlyRootFilesystem", w.container_path(ci)),
            format!(
                "Container `{cname}` of {} has a writable root filesystem (`readOnlyRootFilesystem` \
                 is not true).",
                label(w)
            ),
        );
    }
}

fn in_process_scheduler(
    index: &Index<'_>,
    w: &Workload<'_>,
    vols: &[Volume<'_>],
    mts: &[Mount<'_>],
    out: &mut Sink<'_>,
) {
    if !out.runs(RuleId::InProcessScheduler) {
        return;
    }
    let cms = mounted_config_maps(index, w, vols, mts);
    let scheduler = |argv: &[&str]| {
        patterns::in_process_scheduler(argv).or_else(|| {
            if !patterns::runs_supervisord(argv) {
                return None;
            }
            cms.iter().find_map(|(_, cm, data)| {
                data.values()
                    .filter_map(Value::as_str)
                    .find_map(patterns::supervisord_cron)
                    .map(|p| format!("{p} (ConfigMap `{cm}`)"))
            })
        })
    };
    for (ci, c) in containers(w).iter().enumerate() {
        let Some((field, argv)) = command_line(c) else {
            continue;
        };
        let cname = str_at(c, &["name"]).unwrap_or("?");
        if let Some(hit) = scheduler(&argv) {
            out.push(
                w.obj,
                RuleId::InProcessScheduler,
                format!("{}.{field}", w.container_path(ci)),
                format!(
                    "Container `{cname}` of {} runs a scheduler in the serving pod: {hit}; every \
                     replica runs each job.",
                    label(w)
                ),
            );
        }
    }
    if w.kind != Kind::StatelessApp {
        return;
    }
    // The app's workers run a command line of their own (with the app's
    // mounts); one without runs the app's, judged above.
    let spec = &index.objects[w.obj].value["spec"];
    for (i, worker) in arr_at(spec, &["workers"]).iter().enumerate() {
        let Some((field, argv)) = command_line(worker) else {
            continue;
        };
        if let Some(hit) = scheduler(&argv) {
            out.push(
                w.obj,
                RuleId::InProcessScheduler,
                format!("spec.workers[{i}].{field}"),
                format!(
                    "Worker `{}` of {} runs a scheduler: {hit}; each of its replicas (its HPA \
                     scales it out) runs each job. List the jobs in `spec.schedules` instead.",
                    str_at(worker, &["name"]).unwrap_or("?"),
                    label(w)
                ),
            );
        }
    }
}

/// `command` then `args` of a container (or a StatelessApp worker), and the
/// first of the two that is set; `None` when neither is.
fn command_line(c: &Value) -> Option<(&'static str, Vec<&str>)> {
    let mut argv: Vec<&str> = Vec::new();
    let mut first = None;
    for key in ["command", "args"] {
        let items = arr_at(c, &[key]);
        if !items.is_empty() && first.is_none() {
            first = Some(key);
        }
        argv.extend(items.iter().filter_map(Value::as_str));
    }
    first.map(|field| (field, argv))
}

/// `unknown-waiver`: a waiver name that is no rule waives nothing, silently.
pub(crate) fn unknown_waivers(objects: &[Object], out: &mut Sink<'_>) {
    if !out.runs(RuleId::UnknownWaiver) {
        return;
    }
    for (i, obj) in objects.iter().enumerate() {
        let Some(allow) = str_at(&obj.value, &["metadata", "annotations", WAIVER_ANNOTATION])
        else {
            continue;
        };
        let mut unknown: Vec<&str> = Vec::new();
        for name in waiver_names(allow) {
            if name != "*" && name.parse::<RuleId>().is_err() && !unknown.contains(&name) {
                unknown.push(name);
            }
        }
        if unknown.is_empty() {
            continue;
        }
        let names = unknown
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, verb) = if unknown.len() == 1 {
            ("rule", "is")
        } else {
            ("rules", "are")
        };
        out.push(
            i,
            RuleId::UnknownWaiver,
            format!("metadata.annotations[\"{WAIVER_ANNOTATION}\"]"),
            format!(
                "`{WAIVER_ANNOTATION}` names {noun} {names}, which {verb} not in the catalogue \
                 and waive{} nothing (valid rules: {}, or `*` for all).",
                if unknown.len() == 1 { "s" } else { "" },
                super::valid_rule_names()
            ),
        );
    }
}
