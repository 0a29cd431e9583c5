//! `stateless-operator audit`: the `lint` rules over what runs in a cluster.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Args;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::lint::ReportArgs;
use crate::rules::{Object, evaluate};

/// Kinds the rules read: workloads, what routes to them, and their config.
/// Vendor kinds (Istio, GKE, Traefik, Gateway API) are listed only where served.
const AUDITED: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("", "v1", "Service", "services"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("networking.k8s.io", "v1", "Ingress", "ingresses"),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    ),
    ("stateless.dev", "v1alpha1", "StatelessApp", "statelessapps"),
    (
        "networking.istio.io",
        "v1",
        "DestinationRule",
        "destinationrules",
    ),
    ("cloud.google.com", "v1", "BackendConfig", "backendconfigs"),
    ("traefik.io", "v1alpha1", "IngressRoute", "ingressroutes"),
    ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
];

/// Check the workloads running in a cluster for state kept in the application tier.
#[derive(Debug, Args)]
#[command(after_help = "\
Uses the current kubeconfig context (or in-cluster config). Needs list permission on the
audited kinds; a kind that is not served is skipped, one that cannot be listed is reported.

Exit status: 0 no unwaived findings at or above --min-severity, 1 findings,
2 a kind could not be listed or the cluster is unreachable (findings are still printed).")]
pub struct AuditArgs {
    /// Audit this namespace (default: the kubeconfig context's namespace).
    #[arg(long, short = 'n', conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,

    /// Audit every namespace.
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,

    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, thiserror::Error)]
enum AuditError {
    #[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("creating the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("listing {kind}: {source}")]
    List {
        kind: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

pub fn run(args: &AuditArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AuditError::Runtime)
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (objects, errors) = match runtime.block_on(collect(args)) {
        Ok(collected) => collected,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for e in &errors {
        eprintln!("error: {e}");
    }
    let findings = evaluate(&objects, &args.report.config());
    let code = args.report.emit(&findings);
    if errors.is_empty() {
        code
    } else {
        ExitCode::from(2)
    }
}

async fn collect(args: &AuditArgs) -> Result<(Vec<Object>, Vec<AuditError>), AuditError> {
    let config = kube::Config::infer().await?;
    let namespace = if args.all_namespaces {
        None
    } else {
        Some(
            args.namespace
                .clone()
                .unwrap_or_else(|| config.default_namespace.clone()),
        )
    };
    let client = crate::client::build(config, Default::default()).map_err(AuditError::Client)?;
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for (group, version, kind, plural) in AUDITED {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        match list_all(&api, &resource).await {
            Ok(items) => objects.extend(items),
            // Not served here (CRD not installed): nothing to audit.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => errors.push(AuditError::List {
                kind: (*kind).to_string(),
                source: Box::new(source),
            }),
        }
    }
    Ok((without_operator_children(objects), errors))
}

/// Every object of one kind, page by page (bounded memory per request).
async fn list_all(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
) -> Result<Vec<Value>, kube::Error> {
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        for mut item in page.items {
            // managedFields are most of an object's size and never a finding.
            item.metadata.managed_fields = None;
            let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
            if value.is_object() {
                // List items come without apiVersion/kind; the rules need them.
                value["apiVersion"] = Value::String(resource.api_version.clone());
                value["kind"] = Value::String(resource.kind.clone());
                out.push(value);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// A string field, or "" when absent.
fn text(field: &Value) -> &str {
    field.as_str().unwrap_or_default()
}

/// The `name` of each item of the list `spec.<field>` (workers, schedules).
fn item_names<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    spec[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str())
}

/// A StatelessApp as an ownerReference names it: namespace, name, uid.
type AppKey<'a> = (&'a str, &'a str, &'a str);

/// Objects controlled by a StatelessApp are reported through the app itself
/// (its spec is audited), not a second time through each child. Only the
/// children its controller creates: an object of a kind and name the app's
/// controller makes, naming as its controller an app that exists (same
/// namespace, name and uid). An ownerReference is written by whoever creates
/// the object; one naming an app that is not there, or put on an object the
/// operator never makes (a sticky Service of another name, an Ingress), hides
/// nothing.
fn without_operator_children(values: Vec<Value>) -> Vec<Object> {
    let apps: HashMap<AppKey<'_>, Vec<(&'static str, String)>> = values
        .iter()
        .filter(|v| v["kind"] == crate::crd::KIND)
        .filter_map(|v| {
            let meta = &v["metadata"];
            let name = meta["name"].as_str()?;
            let spec = &v["spec"];
            let children = crate::build::names::children(
                name,
                item_names(spec, "workers"),
                item_names(spec, "schedules"),
            );
            Some((
                (meta["namespace"].as_str()?, name, meta["uid"].as_str()?),
                children,
            ))
        })
        .collect();
    let is_child = |v: &Value| {
        let meta = &v["metadata"];
        let (namespace, kind, name) = (
            text(&meta["namespace"]),
            text(&v["kind"]),
            text(&meta["name"]),
        );
        meta["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["kind"] == crate::crd::KIND && o["controller"] == true)
            .filter_map(|o| apps.get(&(namespace, text(&o["name"]), text(&o["uid"]))))
            .any(|children| children.iter().any(|(k, n)| *k == kind && n == name))
    };
    let keep: Vec<bool> = values.iter().map(|v| !is_child(v)).collect();
    drop(apps);
    values
        .into_iter()
        .zip(keep)
        .filter_map(|(v, keep)| keep.then(|| Object::new(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn children_of_existing_stateless_apps_are_left_to_the_app() {
        let app = json!({"kind": "StatelessApp", "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": {"workers": [{"name": "jobs"}]}});
        let owner = |uid: &str| json!([{"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp", "name": "web", "uid": uid, "controller": true}]);
        let child = json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop",
            "ownerReferences": owner("u-1")}});
        let forged = json!({"kind": "Service", "metadata": {"name": "sticky", "namespace": "shop",
            "ownerReferences": owner("u-2")}});
        // The real app's uid, on objects its controller never makes.
        let adopted = json!({"kind": "Service", "metadata": {"name": "sticky", "namespace": "shop",
            "ownerReferences": owner("u-1")}});
        let ingress = json!({"kind": "Ingress", "metadata": {"name": "web", "namespace": "shop",
            "ownerReferences": owner("u-1")}});
        let worker = json!({"kind": "Deployment", "metadata": {"name": "web-jobs", "namespace": "shop",
            "ownerReferences": owner("u-1")}});
        let elsewhere = json!({"kind": "Service", "metadata": {"name": "web", "namespace": "other",
            "ownerReferences": owner("u-1")}});
        let other = json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "shop",
            "ownerReferences": [{"kind": "Something", "name": "x", "uid": "u-1", "controller": true}]}});
        let kept = without_operator_children(vec![
            app, child, forged, adopted, ingress, worker, elsewhere, other,
        ]);
        let names: Vec<(&str, &str)> = kept
            .iter()
            .map(|o| {
                (
                    o.value["kind"].as_str().unwrap_or_default(),
                    o.value["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("StatelessApp", "web"),
                ("Service", "sticky"),
                ("Service", "sticky"),
                ("Ingress", "web"),
                ("Service", "web"),
                ("Deployment", "api")
            ]
        );
    }
}
