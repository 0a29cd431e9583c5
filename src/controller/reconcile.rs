//! One reconciliation of a StatelessApp, as steps:
//! observe (referenced config, session store) → build (pure) → apply (only
//! what changed) → prune (managed objects no longer wanted) → status. The
//! session store's Secrets live in [`super::session_store`], the JWT signing
//! keys in [`super::signing_keys`], the workers in [`super::workers`], the CronJobs in
//! [`super::schedules`], the config hash in
//! [`super::config_hash`], Events and findings in [`super::events`].
//!
//! Errors do not skip the status step: the app always says why it is not
//! Ready, and the error goes to the backoff in [`super::error_policy`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::apply::{Applied, apply, may_write};
use super::cache::Cache;
use super::compliance;
use super::status::{self, Observation, Observed};
use super::{
    Context, Error, config_hash, events, object_storage, observe, schedules, session_store,
    signing_keys, workers,
};
use crate::build::{self, BuildInputs, FIELD_MANAGER, is_controlled_by, names};
use crate::crd::{SessionStoreStatus, SessionStoreType, StatelessApp};

/// Pod-template annotation of the managed Redis that changes with its Secret,
/// so Redis restarts with a new password if the Secret is ever recreated.
pub const SECRET_HASH_ANNOTATION: &str = "stateless.dev/secret-hash";

/// How soon an app is looked at again while the caches are not yet listed.
const CACHES_SYNCING_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

pub async fn reconcile(app: Arc<StatelessApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    if app.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the children through their owner
        // references; applying now would recreate what it just deleted.
        return Ok(Action::await_change());
    }
    let namespace = app.namespace().unwrap_or_default();
    if !ctx.caches.synced(&namespace) {
        // The first lists are still coming in (seconds after a start).
        return Ok(Action::requeue(CACHES_SYNCING_RETRY));
    }
    let mut timer = ctx.metrics.reconcile_timer();
    let mut observed = Observed {
        generation: app.metadata.generation,
        ..Default::default()
    };
    let mut changes = Vec::new();
    let outcome = converge(&app, &ctx, &namespace, &mut observed, &mut changes).await;
    if let Err(e) = &outcome {
        observed.ready = Some(Observation::new(false, e.reason(), e.to_string()));
    }
    events::publish_changes(&app, &ctx, &changes).await;
    let status_result = write_status(&app, &ctx, &namespace, &observed).await;
    timer.set_result(match &outcome {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    });
    let due = outcome?;
    status_result?;
    ctx.reset_failures(&app);
    Ok(Action::requeue(until_due(ctx.settings.resync, due)))
}

/// The resync period, or less when something (a key rotation) is due sooner.
fn until_due(resync: std::time::Duration, due: Option<jiff::Timestamp>) -> std::time::Duration {
    let Some(due) = due else {
        return resync;
    };
    let wait = jiff::Timestamp::now().duration_until(due);
    // A second late rather than early: the schedule counts whole seconds.
    let wait =
        std::time::Duration::try_from(wait).unwrap_or_default() + std::time::Duration::from_secs(1);
    wait.min(resync)
}

/// Observe, build, apply and prune; fill `observed` as far as it got. The
/// time something is next due, if sooner than any change would say.
async fn converge(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    observed: &mut Observed,
    changes: &mut Vec<String>,
) -> Result<Option<jiff::Timestamp>, Error> {
    let name = app.name_any();
    let target = Target {
        app,
        ctx,
        namespace,
        name: name.clone(),
    };

    // Observe: the session store first, since its Secret feeds the config hash.
    let session_secret = match app.spec.session_store_type() {
        SessionStoreType::Managed => {
            let secret = session_store::ensure_managed_secret(app, ctx, namespace, changes).await?;
            observed.session_store = Some(SessionStoreStatus {
                service_name: Some(names::redis(&name)),
                secret_name: Some(names::redis_secret(&name)),
                secret_key: Some(build::redis::URL_KEY.to_string()),
            });
            Some(secret)
        }
        SessionStoreType::External => {
            let secret = session_store::check_external_secret(app, ctx, namespace).await;
            let reference = app.spec.external_session_secret();
            observed.session_store = Some(SessionStoreStatus {
                service_name: None,
                secret_name: reference.map(|r| r.name.clone()),
                secret_key: reference.map(|r| r.key.clone()),
            });
            match secret {
                Ok(secret) => {
                    observed.session_store_ready = Some(Observation::new(
                        true,
                        "ExternalSecretFound",
                        "the external session store Secret is present",
                    ));
                    Some(secret)
                }
                Err(e) => {
                    observed.session_store_ready =
                        Some(Observation::new(false, e.reason(), e.to_string()));
                    return Err(e);
                }
            }
        }
        SessionStoreType::None => {
            observed.session_store_ready = Some(Observation::new(
                true,
                "NotConfigured",
                "no session store configured (sessionStore.type: none)",
            ));
            None
        }
    };
    // The signing keys before the Deployment whose pods mount them.
    let keys = signing_keys::ensure(app, ctx, namespace, changes).await?;
    observed.signing_keys = keys.status;

    let referenced = observe::referenced(ctx, app, namespace).await?;
    object_storage::check_credentials(app, namespace, &referenced)?;
    let config_hash = config_hash::of_referenced_config(&ctx.hash_key, &referenced);
    let config_maps: Vec<_> = referenced
        .iter()
        .filter_map(|(_, content)| content.as_ref()?.config_map.clone())
        .collect();

    // Validate: the statelessness rules over the spec and what routes to it.
    let compliance = compliance::evaluate(&ctx.caches, app, namespace, &config_maps)?;
    let blocked = compliance.blocks_rollout(app);
    observed.compliant = Some(compliance.observation(blocked));
    observed.violations = compliance.violations();
    observed.violation_count = compliance.violation_count();
    events::report_findings(app, ctx, namespace, &compliance).await;

    // Build: pure.
    let children = build::children(
        app,
        &BuildInputs {
            config_hash: Some(config_hash),
            session_store_image: ctx.settings.session_store_image.clone(),
        },
    )?;

    // Apply: the session store before the app that connects to it.
    let redis_ready = match children.session_store {
        Some(mut redis) => {
            let secret_hash = session_secret
                .as_ref()
                .map(|s| s.digest.clone())
                .unwrap_or_default();
            if let Some(template_meta) = redis
                .deployment
                .spec
                .as_mut()
                .map(|s| s.template.metadata.get_or_insert_with(Default::default))
            {
                template_meta
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(SECRET_HASH_ANNOTATION.to_string(), secret_hash);
            }
            let caches = &ctx.caches;
            apply_child(&target, &caches.config_maps, changes, redis.config).await?;
            apply_child(&target, &caches.services, changes, redis.service).await?;
            apply_child(
                &target,
                &caches.network_policies,
                changes,
                redis.network_policy,
            )
            .await?;
            match redis.pvc {
                Some(pvc) => {
                    apply_child(&target, &caches.pvcs, changes, pvc).await?;
                }
                None => {
                    let data = target.named(names::redis_data(&name));
                    prune::<PersistentVolumeClaim, _>(data, &caches.pvcs, changes).await?
                }
            }
            let deployment =
                apply_child(&target, &caches.deployments, changes, redis.deployment).await?;
            Some(status::redis_readiness(&deployment))
        }
        None => {
            session_store::prune_all(app, ctx, namespace, changes).await?;
            None
        }
    };
    if let Some(ready) = redis_ready {
        observed.session_store_ready = Some(ready);
    }

    let deployment = if blocked {
        // Enforce: keep whatever Deployment runs now; roll nothing out.
        ctx.caches
            .deployments
            .get(namespace, &names::app(&name))
            .map(|d| d.as_ref().clone())
    } else {
        Some(
            apply_child(
                &target,
                &ctx.caches.deployments,
                changes,
                children.deployment,
            )
            .await?,
        )
    };
    let readiness = match &deployment {
        Some(deployment) => {
            let deployment_status = deployment.status.clone().unwrap_or_default();
            observed.replicas = deployment_status.replicas;
            observed.ready_replicas = deployment_status.ready_replicas;
            status::deployment_readiness(deployment, app.spec.min_replicas())
        }
        None => Observation::new(
            false,
            "RolloutBlocked",
            "policy mode Enforce: the spec violates statelessness rules (see the Compliant condition), so no Deployment was created",
        ),
    };
    apply_child(&target, &ctx.caches.services, changes, children.service).await?;
    apply_child(&target, &ctx.caches.hpas, changes, children.hpa).await?;
    apply_child(&target, &ctx.caches.pdbs, changes, children.pdb).await?;
    observed.workers = Some(workers::ensure(&target, children.workers, blocked, changes).await?);
    observed.schedules =
        Some(schedules::ensure(&target, children.schedules, blocked, changes).await?);

    observed.ready = Some(match &observed.session_store_ready {
        Some(store) if !store.status => {
            Observation::new(false, "SessionStoreNotReady", store.message.clone())
        }
        _ => readiness,
    });
    Ok(keys.wake_at)
}

/// The app a child belongs to, and the child's namespace and name.
pub(super) struct Target<'a> {
    pub app: &'a StatelessApp,
    pub ctx: &'a Context,
    pub namespace: &'a str,
    pub name: String,
}

impl<'a> Target<'a> {
    pub fn named(&self, name: String) -> Target<'a> {
        Target {
            app: self.app,
            ctx: self.ctx,
            namespace: self.namespace,
            name,
        }
    }
}

/// Apply one child (see [`apply`]) against its cached live object, note the
/// change, remember the write in the cache, and return the live object.
pub(super) async fn apply_child<K>(
    target: &Target<'_>,
    cache: &Cache<K>,
    changes: &mut Vec<String>,
    desired: K,
) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let ctx = target.ctx;
    let live = cache.get(target.namespace, &desired.name_any());
    let applied = apply(
        &Api::namespaced(ctx.client.clone(), target.namespace),
        live.as_deref(),
        target.app,
        &ctx.settings.leadership,
        desired,
    )
    .await?;
    let object = applied.object().clone();
    if applied.changed() {
        cache.remember(object.clone());
    }
    track(changes, ctx, applied);
    Ok(object)
}

/// Note an applied child in the change list (for the Event) and the metrics.
fn track<K: Resource<DynamicType = ()>>(
    changes: &mut Vec<String>,
    ctx: &Context,
    applied: Applied<K>,
) {
    let verb = match &applied {
        Applied::Created(_) => "created",
        Applied::Updated(_) => "updated",
        Applied::Unchanged(_) => return,
    };
    let kind = K::kind(&());
    ctx.metrics.count_write(&kind, "apply");
    changes.push(format!(
        "{verb} {kind} {}",
        applied.object().meta().name.as_deref().unwrap_or_default()
    ));
}

/// Delete the target, of kind K, if the cache shows it exists and this app
/// controls it. `cache` holds K's objects (whole, or their metadata).
pub(super) async fn prune<K, C>(
    target: Target<'_>,
    cache: &Cache<C>,
    changes: &mut Vec<String>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    C: Resource + Clone + Serialize + DeserializeOwned,
{
    let Target {
        app,
        ctx,
        namespace,
        name,
    } = target;
    let kind = K::kind(&()).to_string();
    let Some(obj) = cache.get(namespace, &name) else {
        return Ok(());
    };
    if !is_controlled_by(obj.meta(), app) || obj.meta().deletion_timestamp.is_some() {
        return Ok(());
    }
    may_write(&ctx.settings.leadership, "delete", &kind, namespace, &name)?;
    let api = Api::<K>::namespaced(ctx.client.clone(), namespace);
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(Error::kube("delete", &kind, namespace, &name)(e)),
    }
    cache.remember_deleted(namespace, &name, obj.meta().uid.clone());
    ctx.metrics.count_write(&kind, "delete");
    changes.push(format!("pruned {kind} {name}"));
    Ok(())
}

/// Patch the status only when it differs; announce Ready transitions.
async fn write_status(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    observed: &Observed,
) -> Result<(), Error> {
    let current = ctx.caches.current_status(app);
    let current = current.as_ref();
    let next = status::next_status(current, observed, &status::now());
    if current == Some(&next) {
        return Ok(());
    }
    let api = Api::<StatelessApp>::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": crate::crd::StatelessApp::api_version(&()),
        "kind": crate::crd::KIND,
        "status": next,
    });
    may_write(
        &ctx.settings.leadership,
        "patch status of",
        crate::crd::KIND,
        namespace,
        &app.name_any(),
    )?;
    let written = api
        .patch_status(
            &app.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::kube(
            "patch status of",
            crate::crd::KIND,
            namespace,
            &app.name_any(),
        ))?;
    ctx.caches.remember_status(&written);
    ctx.metrics.count_write(crate::crd::KIND, "status");
    events::announce_transitions(app, ctx, current, &next).await;
    Ok(())
}
