//! The JWT signing keys' lifecycle (`identity.jwt`): the Secret `<app>-jwt`
//! created with a fresh key set, advanced when the schedule says so (a
//! rotation, a retired key unpublished, a new algorithm), and removed with
//! the field. What is due is decided by [`crate::signing_keys`] from the
//! schedule annotation in the cached metadata, so a reconcile with nothing
//! due sends no request.
//!
//! The operator may not update Secrets (RBAC: create and delete only, so it
//! can change no one else's), so a new key set replaces the Secret. Its keys
//! are first written to `<app>-jwt-next`; a crash between the delete and the
//! create then loses nothing: the next reconcile restores from that copy.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMetaExt;
use kube::{Api, Resource, ResourceExt};

use super::apply::{GuardedDelete, create_secret, delete_secret_guarded};
use super::reconcile::{Target, prune};
use super::{Context, Error};
use crate::build::{self, is_controlled_by, names};
use crate::crd::{SigningKeysStatus, StatelessApp};
use crate::signing_keys::{
    KeySet, Policy, ROTATE_ANNOTATION, SCHEDULE_ANNOTATION, Schedule, keys, parse_schedule,
};

/// What the step found: the status to show and when something is next due.
#[derive(Debug, Default)]
pub(super) struct SigningKeys {
    pub status: Option<SigningKeysStatus>,
    pub wake_at: Option<Timestamp>,
}

pub(super) async fn ensure(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    changes: &mut Vec<String>,
) -> Result<SigningKeys, Error> {
    let app_name = app.name_any();
    let main = names::signing_keys(&app_name);
    let staged = names::signing_keys_staged(&app_name);
    let at = |name: &str| Target {
        app,
        ctx,
        namespace,
        name: name.to_string(),
    };
    let cache = &ctx.caches.secret_meta;
    let Some(jwt) = app.spec.identity.as_ref().and_then(|i| i.jwt.as_ref()) else {
        prune::<Secret, _>(at(&main), cache, changes).await?;
        prune::<Secret, _>(at(&staged), cache, changes).await?;
        return Ok(SigningKeys::default());
    };
    let policy = Policy::from_spec(jwt, ctx.settings.key_propagation).map_err(|source| {
        Error::InvalidIdentity {
            namespace: namespace.into(),
            name: app_name.clone(),
            source,
        }
    })?;
    // To the second, as the schedule and the status store it.
    let now = super::status::now().0;
    let request = app.annotations().get(ROTATE_ANNOTATION).map(String::as_str);
    let conflict = |name: &str| Error::SigningKeysConflict {
        namespace: namespace.into(),
        name: name.into(),
    };

    // From the cache: is anything due?
    let cached = cache.get(namespace, &main);
    if let Some(meta) = &cached {
        if !is_controlled_by(&meta.metadata, app) {
            return Err(conflict(&main));
        }
        if let Ok(schedule) = parse_schedule(schedule_of(&meta.metadata)) {
            let plan = schedule.plan(&policy, now, request);
            if plan.is_empty() {
                // A copy left by a replacement that was cut short.
                prune::<Secret, _>(at(&staged), cache, changes).await?;
                return Ok(SigningKeys::of(&main, &schedule, &policy, now, request));
            }
        }
    }

    // Something is due, or there is no key set yet: read what there is.
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let unusable = |name: &str| {
        let (namespace, name) = (namespace.to_string(), name.to_string());
        move |source| Error::SigningKeysUnusable {
            namespace,
            name,
            source,
        }
    };
    let live = match cached {
        Some(_) => get_owned(&api, app, &main).await?,
        None => None,
    };
    let mut copy = None;
    let current = match &live {
        Some(secret) => Some(
            KeySet::from_secret(schedule_of(&secret.metadata), &data_of(secret))
                .map_err(unusable(&main))?,
        ),
        None => match staged_copy(&api, app, ctx, namespace, &staged).await? {
            Some((secret, keys)) => {
                copy = Some(secret);
                keys
            }
            None => None,
        },
    };
    let restored = live.is_none() && current.is_some();
    let (keys, notes) = advance(current, policy.clone(), now, request.map(str::to_string))
        .await
        .map_err(unusable(&main))?;
    if notes.is_empty() && !restored && live.is_some() {
        // The cache was behind: the Secret already is what is due.
        return Ok(SigningKeys::of(
            &main,
            &keys.schedule,
            &policy,
            now,
            request,
        ));
    }

    let desired = build::signing_keys::secret(app, main.clone(), &keys)?;
    let written = match &live {
        Some(old) => {
            // Stage first: after this, no crash can lose the new keys.
            let staging = build::signing_keys::secret_like(app, staged.clone(), &desired)?;
            copy = Some(replace_staged(&api, app, ctx, &staging).await?);
            delete_guarded(ctx, namespace, old).await?;
            create(&api, app, ctx, &desired).await?
        }
        None => create(&api, app, ctx, &desired).await?,
    };
    remember(ctx, &written);
    if let Some(copy) = &copy {
        // Ours (its uid): gone or replaced meanwhile is as good as deleted.
        delete_secret_guarded(ctx, namespace, copy, false).await?;
    }
    match (&live, restored) {
        (None, true) => changes.push(format!("restored Secret {main} from {staged}")),
        (None, false) => changes.push(format!(
            "created Secret {main} with {} signing key {}",
            keys.schedule.active.alg, keys.schedule.active.kid
        )),
        (Some(_), _) => {}
    }
    changes.extend(notes);
    Ok(SigningKeys::of(
        &main,
        &keys.schedule,
        &policy,
        now,
        request,
    ))
}

fn schedule_of(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(SCHEDULE_ANNOTATION)
        .map(String::as_str)
}

fn data_of(secret: &Secret) -> std::collections::BTreeMap<String, k8s_openapi::ByteString> {
    secret.data.clone().unwrap_or_default()
}

impl SigningKeys {
    /// The key set `schedule` in Secret `secret_name`, as shown in the
    /// status, and when it is next due.
    fn of(
        secret_name: &str,
        schedule: &Schedule,
        policy: &Policy,
        now: Timestamp,
        request: Option<&str>,
    ) -> Self {
        Self {
            status: Some(status_of(secret_name, schedule, policy)),
            wake_at: schedule.plan(policy, now, request).wake_at,
        }
    }
}

/// The status: key ids and times, from the schedule alone.
fn status_of(secret_name: &str, schedule: &Schedule, policy: &Policy) -> SigningKeysStatus {
    SigningKeysStatus {
        secret_name: secret_name.to_string(),
        algorithm: schedule.active.alg.to_string(),
        active_key_id: schedule.active.kid.clone(),
        next_key_id: schedule.next.kid.clone(),
        retired_key_ids: schedule.retired.iter().map(|k| k.kid.clone()).collect(),
        last_rotation: Time(schedule.active.activated),
        next_rotation: Time(schedule.next_rotation(policy)),
    }
}

/// Carry out what is due at `now` on `current` (or make a first key set),
/// off the async workers: an RSA key takes a while to generate.
async fn advance(
    current: Option<KeySet>,
    policy: Policy,
    now: Timestamp,
    request: Option<String>,
) -> Result<(KeySet, Vec<String>), crate::signing_keys::SigningKeyError> {
    let work = move || {
        let request = request.as_deref();
        let mut generate = keys::generate;
        match current {
            Some(mut keys) => {
                let plan = keys.schedule.plan(&policy, now, request);
                let notes = keys.advance(&plan, &policy, now, request, &mut generate)?;
                Ok((keys, notes))
            }
            None => Ok((
                KeySet::new(&policy, now, request, &mut generate)?,
                Vec::new(),
            )),
        }
    };
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(crate::signing_keys::SigningKeyError::Generate {
            algorithm: Default::default(),
            message: format!("the key generation task failed: {e}"),
        })
    })
}

/// The Secret `name` if it exists; a conflict if this app does not control it.
async fn get_owned(
    api: &Api<Secret>,
    app: &StatelessApp,
    name: &str,
) -> Result<Option<Secret>, Error> {
    let namespace = app.namespace().unwrap_or_default();
    let secret = api
        .get_opt(name)
        .await
        .map_err(Error::kube("get", "Secret", &namespace, name))?;
    match secret {
        Some(secret) if !is_controlled_by(secret.meta(), app) => Err(Error::SigningKeysConflict {
            namespace,
            name: name.into(),
        }),
        other => Ok(other),
    }
}

/// The staged copy, when the main Secret is gone and a copy of ours is
/// there (a replacement cut short between delete and create), with its key
/// set if it is readable (an unreadable copy restores nothing: a new key set
/// is made, and the copy removed).
async fn staged_copy(
    api: &Api<Secret>,
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    staged: &str,
) -> Result<Option<(Secret, Option<KeySet>)>, Error> {
    if ctx.caches.secret_meta.get(namespace, staged).is_none() {
        return Ok(None);
    }
    let Some(copy) = get_owned(api, app, staged).await? else {
        return Ok(None);
    };
    let keys = KeySet::from_secret(schedule_of(&copy.metadata), &data_of(&copy)).ok();
    Ok(Some((copy, keys)))
}

/// Create `secret`; when it exists already (the cache was behind our own
/// create), the one there.
async fn create(
    api: &Api<Secret>,
    app: &StatelessApp,
    ctx: &Context,
    secret: &Secret,
) -> Result<Secret, Error> {
    match create_secret(ctx, secret).await? {
        Some(created) => Ok(created),
        // Written meanwhile: ours (a racing reconcile) is used, anyone
        // else's is a conflict.
        None => get_owned(api, app, &secret.name_any())
            .await?
            .ok_or_else(|| Error::SigningKeysChanged {
                namespace: secret.namespace().unwrap_or_default(),
                name: secret.name_any(),
            }),
    }
}

/// Write the staged copy, replacing an older copy of ours; the copy written.
async fn replace_staged(
    api: &Api<Secret>,
    app: &StatelessApp,
    ctx: &Context,
    copy: &Secret,
) -> Result<Secret, Error> {
    let namespace = copy.namespace().unwrap_or_default();
    let name = copy.name_any();
    if let Some(old) = get_owned(api, app, &name).await? {
        delete_guarded(ctx, &namespace, &old).await?;
    }
    let written = create(api, app, ctx, copy).await?;
    if written.metadata.annotations != copy.metadata.annotations {
        // Another writer staged other keys between our delete and create.
        return Err(Error::SigningKeysChanged { namespace, name });
    }
    remember(ctx, &written);
    Ok(written)
}

/// Delete `secret` if it is still the version we read; a conflict otherwise
/// (someone changed it: the next reconcile decides again).
async fn delete_guarded(ctx: &Context, namespace: &str, secret: &Secret) -> Result<(), Error> {
    match delete_secret_guarded(ctx, namespace, secret, true).await? {
        GuardedDelete::Deleted => Ok(()),
        GuardedDelete::Missed => Err(Error::SigningKeysChanged {
            namespace: namespace.into(),
            name: secret.name_any(),
        }),
    }
}

/// Note our write so the metadata cache knows it before the watch does.
fn remember(ctx: &Context, secret: &Secret) {
    ctx.caches
        .secret_meta
        .remember(secret.metadata.clone().into_response_partial::<Secret>());
}
