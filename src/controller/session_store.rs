//! The session store's lifecycle: the managed Redis Secret (created once,
//! replaced only when its password was rotated), the external store's Secret
//! (checked, never written), and the managed objects removed after a switch
//! away from `managed`. The Redis objects themselves are built by
//! [`crate::build::redis`] and applied like every other child.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Resource, ResourceExt};

use super::apply::may_write;
use super::{Context, Error, reconcile};
use crate::build::{self, FIELD_MANAGER, is_controlled_by, names};
use crate::crd::StatelessApp;

/// The managed Redis Secret: created once with a fresh random password and
/// never regenerated. A Secret of that name that we do not control is never
/// taken over.
pub(super) async fn ensure_managed_secret(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    changes: &mut Vec<String>,
) -> Result<Secret, Error> {
    let name = names::redis_secret(&app.name_any());
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let kube_err = |verb: &'static str| Error::kube(verb, "Secret", namespace, &name);
    if let Some(secret) = api.get_opt(&name).await.map_err(kube_err("get"))? {
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
            return Ok(secret);
        }
        may_write(
            &ctx.settings.leadership,
            "delete",
            "Secret",
            namespace,
            &name,
        )?;
        let guarded = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: secret.metadata.uid.clone(),
                resource_version: secret.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &guarded).await {
            Ok(_) => ctx.metrics.count_write("Secret", "delete"),
            // Changed or gone meanwhile: the next reconcile looks again.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => return Err(kube_err("delete")(e)),
        }
        let replaced = create_managed_secret(app, ctx, namespace, &name, &password).await?;
        changes.push(format!(
            "replaced Secret {name} (its url and Redis users follow its password)"
        ));
        return Ok(replaced);
    }
    let password = build::generate_password()?;
    let created = create_managed_secret(app, ctx, namespace, &name, &password).await?;
    changes.push(format!("created Secret {name}"));
    Ok(created)
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
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let kube_err = |verb: &'static str| Error::kube(verb, "Secret", namespace, name);
    let secret = build::redis_secret(app, password)?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    may_write(
        &ctx.settings.leadership,
        "create",
        "Secret",
        namespace,
        name,
    )?;
    match api.create(&params, &secret).await {
        Ok(created) => {
            ctx.metrics.count_write("Secret", "create");
            Ok(created)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => api.get(name).await.map_err(kube_err("get")),
        Err(e) => Err(kube_err("create")(e)),
    }
}

pub(super) async fn check_external_secret(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
) -> Result<Secret, Error> {
    // The CRD's CEL rule requires secretRef with type external; this is the
    // same check for objects that predate the rule.
    let Some(reference) = app.spec.external_session_secret() else {
        return Err(Error::Build(build::BuildError::MissingExternalSecret {
            namespace: namespace.into(),
            name: app.name_any(),
        }));
    };
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let secret = api.get_opt(&reference.name).await.map_err(Error::kube(
        "get",
        "Secret",
        namespace,
        &reference.name,
    ))?;
    let Some(secret) = secret else {
        return Err(Error::ExternalSecretNotFound {
            namespace: namespace.into(),
            name: reference.name.clone(),
            key: reference.key.clone(),
        });
    };
    let has_key = secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(&reference.key))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(&reference.key));
    if !has_key {
        return Err(Error::ExternalSecretKeyMissing {
            namespace: namespace.into(),
            name: reference.name.clone(),
            key: reference.key.clone(),
        });
    }
    Ok(secret)
}

/// Remove every managed Redis object after a switch to `external` or `none`.
pub(super) async fn prune(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    changes: &mut Vec<String>,
) -> Result<(), Error> {
    let name = app.name_any();
    let redis = names::redis(&name);
    reconcile::prune::<Deployment>(app, ctx, namespace, &redis, changes).await?;
    reconcile::prune::<Service>(app, ctx, namespace, &redis, changes).await?;
    reconcile::prune::<NetworkPolicy>(app, ctx, namespace, &redis, changes).await?;
    reconcile::prune::<ConfigMap>(app, ctx, namespace, &redis, changes).await?;
    reconcile::prune::<PersistentVolumeClaim>(
        app,
        ctx,
        namespace,
        &names::redis_data(&name),
        changes,
    )
    .await?;
    reconcile::prune::<Secret>(app, ctx, namespace, &names::redis_secret(&name), changes).await
}
