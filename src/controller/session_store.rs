//! The session store's lifecycle: the managed Redis Secret (created once,
//! replaced only when its password was rotated), the external store's Secret
//! (checked, never written), and the managed objects removed after a switch
//! away from `managed`. The Redis objects themselves are built by
//! [`crate::build::redis`] and applied like every other child.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::core::PartialObjectMetaExt;
use kube::{Api, Resource, ResourceExt};

use super::apply::{create_secret, delete_secret_guarded};
use super::observe::{self, Content};
use super::reconcile::{Target, prune};
use super::{Context, Error};
use crate::build::{self, is_controlled_by, names};
use crate::crd::{ConfigKind, StatelessApp};

/// The managed Redis Secret: created once with a fresh random password and
/// never regenerated. A Secret of that name that we do not control is never
/// taken over. Read only when the cached metadata shows it changed since it
/// was last checked.
pub(super) async fn ensure_managed_secret(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    changes: &mut Vec<String>,
) -> Result<Arc<Content>, Error> {
    let name = names::redis_secret(&app.name_any());
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let kube_err = |verb: &'static str| Error::kube(verb, "Secret", namespace, &name);
    let cached = ctx.caches.meta(ConfigKind::Secret, namespace, &name);
    if let Some(current) = &cached {
        if !is_controlled_by(&current.meta, app) {
            return Err(Error::SecretConflict {
                namespace: namespace.into(),
                name,
            });
        }
        if let Some(memo) = ctx
            .caches
            .fresh_content(ConfigKind::Secret, namespace, &name, current)
            .filter(|m| m.managed_consistent)
        {
            return Ok(memo);
        }
    }
    let live = match cached {
        Some(_) => api.get_opt(&name).await.map_err(kube_err("get"))?,
        // Not in the cache: missing, or created a moment ago by us and not
        // yet seen by the watch (the create below then answers 409).
        None => None,
    };
    if let Some(secret) = live {
        if !is_controlled_by(secret.meta(), app) {
            return Err(Error::SecretConflict {
                namespace: namespace.into(),
                name,
            });
        }
        let Some(password) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(build::redis::PASSWORD_KEY))
        else {
            return Err(Error::ManagedSecretIncomplete {
                namespace: namespace.into(),
                name,
                key: build::redis::PASSWORD_KEY.into(),
            });
        };
        let password = match std::str::from_utf8(&password.0) {
            Ok(p) if !p.is_empty() => p.to_string(),
            _ => {
                return Err(Error::ManagedPasswordUnusable {
                    namespace: namespace.into(),
                    name,
                });
            }
        };
        // The url and ACL file follow the password: after a rotation (a new
        // `password` written into the Secret), or for a Secret of an older
        // version without `users.acl`. The operator may not modify Secrets
        // (RBAC: no update or patch, so it can change none of the users'),
        // so it replaces this one — same name, same password — guarded by
        // its uid and resourceVersion.
        let derived = build::redis::derived_data(&app.name_any(), namespace, &password);
        let current = secret.data.clone().unwrap_or_default();
        if derived.iter().all(|(k, v)| current.get(k) == Some(v)) {
            remove_leftover_staged(app, ctx, namespace).await?;
            return Ok(remember_managed(ctx, namespace, &name, &secret));
        }
        // Stage the password first: after this, no crash can lose it.
        let staged = stage_password(app, ctx, namespace, &password).await?;
        // Changed or gone meanwhile (Missed): the create below answers
        // 409 or makes it anew, and the next reconcile looks again.
        delete_secret_guarded(ctx, namespace, &secret, true).await?;
        let replaced = create_managed_secret(app, ctx, namespace, &name, &password).await?;
        // Ours (its uid): gone or replaced meanwhile is as good as deleted.
        delete_secret_guarded(ctx, namespace, &staged, false).await?;
        changes.push(format!(
            "replaced Secret {name} (its url and Redis users follow its password)"
        ));
        return Ok(remember_managed(ctx, namespace, &name, &replaced));
    }
    // Missing: a replacement cut short between its delete and its create
    // left the password in the staged copy; otherwise a new one.
    let staged = staged_password(app, ctx, namespace).await?;
    let password = match &staged {
        Some((_, password)) => password.clone(),
        None => build::generate_password()?,
    };
    let created = create_managed_secret(app, ctx, namespace, &name, &password).await?;
    match &staged {
        Some((copy, _)) => {
            delete_secret_guarded(ctx, namespace, copy, false).await?;
            changes.push(format!("restored Secret {name} from {}", copy.name_any()));
        }
        None => changes.push(format!("created Secret {name}")),
    }
    Ok(remember_managed(ctx, namespace, &name, &created))
}

/// Write the staged copy of `password`, replacing an older copy of ours
/// (one a crash left); the copy written.
async fn stage_password(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    password: &str,
) -> Result<Secret, Error> {
    let copy = build::redis::redis_secret_staged(app, password)?;
    if let Some(written) = create_secret(ctx, &copy).await? {
        return Ok(written);
    }
    let name = copy.name_any();
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let conflict = || Error::SecretConflict {
        namespace: namespace.into(),
        name: name.clone(),
    };
    let old = api
        .get_opt(&name)
        .await
        .map_err(Error::kube("get", "Secret", namespace, &name))?;
    match old {
        Some(old) if is_controlled_by(old.meta(), app) => {
            delete_secret_guarded(ctx, namespace, &old, true).await?;
            create_secret(ctx, &copy).await?.ok_or_else(conflict)
        }
        // Someone else's Secret of that name: the replacement waits.
        Some(_) => Err(conflict()),
        // Gone meanwhile.
        None => create_secret(ctx, &copy).await?.ok_or_else(conflict),
    }
}

/// A replacement cut short after its create left its staged copy: the
/// Secret is whole, so the copy (a second place holding the password) goes.
/// Found in the metadata cache: no request when there is none.
async fn remove_leftover_staged(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
) -> Result<(), Error> {
    let name = names::redis_secret_staged(&app.name_any());
    if let Some(cached) = ctx.caches.meta(ConfigKind::Secret, namespace, &name)
        && is_controlled_by(&cached.meta, app)
    {
        let copy = Secret {
            metadata: cached.meta,
            ..Secret::default()
        };
        // Guarded by its uid: gone meanwhile is as good as deleted.
        delete_secret_guarded(ctx, namespace, &copy, false).await?;
    }
    Ok(())
}

/// The staged copy of the app's password, when the metadata cache shows one
/// of ours (no request otherwise), and the password in it.
async fn staged_password(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<(Secret, String)>, Error> {
    let name = names::redis_secret_staged(&app.name_any());
    match ctx.caches.meta(ConfigKind::Secret, namespace, &name) {
        Some(cached) if is_controlled_by(&cached.meta, app) => {}
        _ => return Ok(None),
    }
    let copy = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&name)
        .await
        .map_err(Error::kube("get", "Secret", namespace, &name))?;
    Ok(copy.and_then(|copy| {
        if !is_controlled_by(copy.meta(), app) {
            return None;
        }
        let password = copy
            .data
            .as_ref()?
            .get(build::redis::PASSWORD_KEY)
            .and_then(|p| std::str::from_utf8(&p.0).ok())
            .filter(|p| !p.is_empty())?
            .to_string();
        Some((copy, password))
    }))
}

/// Memoize a managed Secret found consistent (its digest and key names,
/// never its values), and note our write so the metadata cache knows it
/// before the watch does.
fn remember_managed(ctx: &Context, namespace: &str, name: &str, secret: &Secret) -> Arc<Content> {
    ctx.caches
        .secret_meta
        .remember(secret.metadata.clone().into_response_partial::<Secret>());
    let mut content = Content::of_secret(&ctx.hash_key, secret);
    content.managed_consistent = true;
    ctx.caches
        .remember_content(ConfigKind::Secret, namespace, name, content)
}

/// Create the managed Secret with `password`; when another reconcile
/// created it first, that one.
async fn create_managed_secret(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    name: &str,
    password: &str,
) -> Result<Secret, Error> {
    let secret = build::redis_secret(app, password)?;
    match create_secret(ctx, &secret).await? {
        Some(created) => Ok(created),
        // Created meanwhile: the caller checks whose it is.
        None => Api::<Secret>::namespaced(ctx.client.clone(), namespace)
            .get(name)
            .await
            .map_err(Error::kube("get", "Secret", namespace, name)),
    }
}

pub(super) async fn check_external_secret(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
) -> Result<Arc<Content>, Error> {
    // The CRD's CEL rule requires secretRef with type external; this is the
    // same check for objects that predate the rule.
    let Some(reference) = app.spec.external_session_secret() else {
        return Err(Error::Build(build::BuildError::MissingExternalSecret {
            namespace: namespace.into(),
            name: app.name_any(),
        }));
    };
    let Some(content) =
        observe::content_of(ctx, ConfigKind::Secret, namespace, &reference.name).await?
    else {
        return Err(Error::ExternalSecretNotFound {
            namespace: namespace.into(),
            name: reference.name.clone(),
            key: reference.key.clone(),
        });
    };
    if !content.keys.contains(&reference.key) {
        return Err(Error::ExternalSecretKeyMissing {
            namespace: namespace.into(),
            name: reference.name.clone(),
            key: reference.key.clone(),
        });
    }
    Ok(content)
}

/// Remove every managed Redis object after a switch to `external` or `none`.
pub(super) async fn prune_all(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    changes: &mut Vec<String>,
) -> Result<(), Error> {
    let name = app.name_any();
    let redis = names::redis(&name);
    let caches = &ctx.caches;
    let at = |name: &str| Target {
        app,
        ctx,
        namespace,
        name: name.to_string(),
    };
    prune::<Deployment, _>(at(&redis), &caches.deployments, changes).await?;
    prune::<Service, _>(at(&redis), &caches.services, changes).await?;
    prune::<NetworkPolicy, _>(at(&redis), &caches.network_policies, changes).await?;
    prune::<ConfigMap, _>(at(&redis), &caches.config_maps, changes).await?;
    prune::<PersistentVolumeClaim, _>(at(&names::redis_data(&name)), &caches.pvcs, changes).await?;
    prune::<Secret, _>(
        at(&names::redis_secret(&name)),
        &caches.secret_meta,
        changes,
    )
    .await?;
    prune::<Secret, _>(
        at(&names::redis_secret_staged(&name)),
        &caches.secret_meta,
        changes,
    )
    .await
}
