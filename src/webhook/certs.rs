//! `builtin` certificate mode: the operator is its own small CA.
//!
//! Every replica runs [`run_builtin`]: it makes sure the Secret
//! `--webhook-secret` in the operator's namespace holds a CA and a serving
//! certificate valid for the webhook Service's DNS names (creating it when
//! missing, reusing it when valid, so all replicas serve the same
//! certificate), loads that certificate into the [`CertStore`], and writes the
//! CA into the `caBundle` of every webhook of the ValidatingWebhookConfiguration
//! `--webhook-config-name` when it differs. It watches both objects, so a
//! rotated Secret is served within seconds and a `caBundle` reset by a
//! `helm upgrade` is put back, and re-checks expiry hourly.
//!
//! Keys of the Secret: `ca.crt`, `tls.crt`, `tls.key` (what cert-manager
//! writes) plus `ca.key`, so that the serving certificate is renewed with the
//! same CA and the `caBundle` does not change. The serving certificate lives
//! one year and is renewed 30 days before it expires; the CA lives ten years
//! and is replaced (with a new serving certificate) in its last year; its
//! expiry is recorded in the annotation `stateless.dev/ca-not-after`.
//!
//! Concurrency: writes carry the `resourceVersion` read (or are creates), so
//! when replicas race the loser gets 409 Conflict/AlreadyExists, re-reads and
//! adopts the winner's certificate. Nothing is written when nothing changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::tls::{CertStore, TlsError, certified_key, provider};
use crate::metrics::WatchMetrics;
use crate::watch::{WatchInfo, observed, without_errors};

/// Secret keys.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
/// Annotation on the Secret with the CA's `notAfter` (RFC 3339).
pub const CA_NOT_AFTER_ANNOTATION: &str = "stateless.dev/ca-not-after";

const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
const CA_RENEW_BEFORE: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const SERVING_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Backdating of `notBefore`, for clocks of the API server that run behind.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
const RECHECK: Duration = Duration::from_secs(60 * 60);
const MISSING_CONFIG_RECHECK: Duration = Duration::from_secs(10);
const FIELD_MANAGER: &str = "stateless-operator-webhook";

/// Errors of the builtin certificate mode.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating the webhook {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid webhook certificate name {name:?}: {reason}")]
    Name { name: String, reason: String },
    #[error("{verb} Secret {namespace}/{name}: {source}")]
    Secret {
        verb: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{verb} ValidatingWebhookConfiguration {name}: {source}")]
    WebhookConfig {
        verb: &'static str,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "Secret {namespace}/{name} keeps changing under us (gave up after {attempts} attempts)"
    )]
    Contended {
        namespace: String,
        name: String,
        attempts: u32,
    },
    #[error("the generated certificate does not load: {0}")]
    Load(#[from] TlsError),
    #[error("building the caBundle patch: {0}")]
    Patch(#[source] serde_json::Error),
}

/// Settings of the builtin mode.
#[derive(Debug, Clone)]
pub struct BuiltinSettings {
    /// The operator's namespace: where the Secret is, and the Service's namespace.
    pub namespace: String,
    /// Secret holding the CA and serving certificate.
    pub secret: String,
    /// Name of the webhook Service (for the DNS names of the certificate).
    pub service: String,
    /// ValidatingWebhookConfiguration whose `caBundle`s are kept in sync.
    pub config_name: String,
    /// Extra subject alternative names: DNS names or IP addresses.
    pub extra_sans: Vec<String>,
}

impl BuiltinSettings {
    /// The names the serving certificate must be valid for:
    /// `<service>.<ns>.svc`, `<service>.<ns>.svc.cluster.local`, then the extras.
    pub fn sans(&self) -> Vec<String> {
        let mut out = vec![
            format!("{}.{}.svc", self.service, self.namespace),
            format!("{}.{}.svc.cluster.local", self.service, self.namespace),
        ];
        for extra in &self.extra_sans {
            let extra = extra.trim();
            if !extra.is_empty() && !out.iter().any(|s| s == extra) {
                out.push(extra.to_string());
            }
        }
        out
    }
}

/// The PEM contents of the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub ca_crt: String,
    pub ca_key: String,
    pub tls_crt: String,
    pub tls_key: String,
    /// `notAfter` of the CA, seconds since the epoch.
    pub ca_not_after: u64,
}

/// What the current Secret content needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid for all names for at least 30 more days: use as is.
    Valid,
    /// CA fine, serving certificate missing, expiring, for other names or broken.
    RenewServing(String),
    /// CA missing, broken or in its last year: new CA and serving certificate.
    Regenerate(String),
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn offset(unix: u64) -> Result<time::OffsetDateTime, CertError> {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| CertError::Name {
        name: unix.to_string(),
        reason: format!("timestamp out of range: {e}"),
    })
}

/// The CA's parameters. The issuer identity (distinguished name, key usages,
/// key identifier method) depends only on this function, so a stored CA key
/// plus these parameters sign certificates that chain to the stored CA.
fn ca_params(not_before: u64, not_after: u64) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "stateless-operator webhook CA");
    dn.push(DnType::OrganizationName, "stateless.dev");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = offset(not_before)?;
    params.not_after = offset(not_after)?;
    Ok(params)
}

fn generate_key(what: &'static str) -> Result<KeyPair, CertError> {
    KeyPair::generate().map_err(|source| CertError::Generate { what, source })
}

/// Issue a serving certificate for `sans` from the CA key `ca_key`.
fn issue_serving(
    ca_key: KeyPair,
    ca_not_after: u64,
    sans: &[String],
    now: SystemTime,
) -> Result<(String, String), CertError> {
    let mut params = CertificateParams::new(sans.to_vec()).map_err(|e| CertError::Name {
        name: sans.join(","),
        reason: e.to_string(),
    })?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        sans.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now_s = secs(now);
    params.not_before = offset(now_s.saturating_sub(BACKDATE.as_secs()))?;
    // Never outlive the CA.
    params.not_after = offset((now_s + SERVING_LIFETIME.as_secs()).min(ca_not_after))?;
    let key = generate_key("serving key")?;
    let issuer = Issuer::new(ca_params(0, ca_not_after)?, ca_key);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| CertError::Generate {
            what: "serving certificate",
            source,
        })?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A new CA and a serving certificate for `sans`.
pub fn generate(sans: &[String], now: SystemTime) -> Result<Bundle, CertError> {
    let now_s = secs(now);
    let not_after = now_s + CA_LIFETIME.as_secs();
    let ca_key = generate_key("CA key")?;
    let ca_cert = ca_params(now_s.saturating_sub(BACKDATE.as_secs()), not_after)?
        .self_signed(&ca_key)
        .map_err(|source| CertError::Generate {
            what: "CA certificate",
            source,
        })?;
    let ca_key_pem = ca_key.serialize_pem();
    let (tls_crt, tls_key) = issue_serving(ca_key, not_after, sans, now)?;
    Ok(Bundle {
        ca_crt: ca_cert.pem(),
        ca_key: ca_key_pem,
        tls_crt,
        tls_key,
        ca_not_after: not_after,
    })
}

/// The same CA, a new serving certificate for `sans`.
pub fn renew_serving(
    bundle: &Bundle,
    sans: &[String],
    now: SystemTime,
) -> Result<Bundle, CertError> {
    let ca_key = KeyPair::from_pem(&bundle.ca_key).map_err(|source| CertError::Generate {
        what: "CA key (reading)",
        source,
    })?;
    let (tls_crt, tls_key) = issue_serving(ca_key, bundle.ca_not_after, sans, now)?;
    Ok(Bundle {
        tls_crt,
        tls_key,
        ..bundle.clone()
    })
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|s| !s.trim().is_empty())
}

/// Read a bundle from Secret data and annotations; `None` when the CA part is
/// missing (the serving part may be empty: it is then renewed).
pub fn bundle_from_secret(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let ca_not_after = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CA_NOT_AFTER_ANNOTATION))
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .and_then(|t| u64::try_from(t.as_second()).ok())?;
    Some(Bundle {
        ca_crt: text(data, CA_CERT_KEY)?,
        ca_key: text(data, CA_KEY_KEY)?,
        tls_crt: text(data, TLS_CERT_KEY).unwrap_or_default(),
        tls_key: text(data, TLS_KEY_KEY).unwrap_or_default(),
        ca_not_after,
    })
}

/// Decide whether `bundle` can be served for `sans` at `now`.
pub fn check(bundle: Option<&Bundle>, sans: &[String], now: SystemTime) -> Verdict {
    let Some(b) = bundle else {
        return Verdict::Regenerate("no CA in the Secret".into());
    };
    let now_s = secs(now);
    if b.ca_not_after < now_s + CA_RENEW_BEFORE.as_secs() {
        return Verdict::Regenerate("the CA expires within a year".into());
    }
    // The CA key must belong to the CA certificate.
    if let Err(e) = certified_key(b.ca_crt.as_bytes(), b.ca_key.as_bytes()) {
        return Verdict::Regenerate(format!("CA certificate and key: {e}"));
    }
    let ca_der = match CertificateDer::from_pem_slice(b.ca_crt.as_bytes()) {
        Ok(der) => der,
        Err(e) => return Verdict::Regenerate(format!("CA certificate: {e}")),
    };
    let serving = match certified_key(b.tls_crt.as_bytes(), b.tls_key.as_bytes()) {
        Ok(key) => key,
        Err(e) => return Verdict::RenewServing(format!("serving certificate and key: {e}")),
    };
    let mut roots = RootCertStore::empty();
    if let Err(e) = roots.add(ca_der) {
        return Verdict::Regenerate(format!("CA certificate: {e}"));
    }
    let verifier =
        match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build() {
            Ok(v) => v,
            Err(e) => return Verdict::Regenerate(format!("CA certificate: {e}")),
        };
    // Valid now and still 30 days from now, for every name.
    let at =
        UnixTime::since_unix_epoch(Duration::from_secs(now_s + SERVING_RENEW_BEFORE.as_secs()));
    let Some((leaf, intermediates)) = serving.cert.split_first() else {
        return Verdict::RenewServing("empty serving certificate chain".into());
    };
    for san in sans {
        let name = match ServerName::try_from(san.as_str()) {
            Ok(n) => n,
            Err(e) => return Verdict::RenewServing(format!("name {san:?}: {e}")),
        };
        if let Err(e) = verifier.verify_server_cert(leaf, intermediates, &name, &[], at) {
            return Verdict::RenewServing(format!(
                "serving certificate for {san} (valid 30 more days?): {e}"
            ));
        }
    }
    Verdict::Valid
}

fn secret_data(bundle: &Bundle) -> BTreeMap<String, ByteString> {
    [
        (CA_CERT_KEY, &bundle.ca_crt),
        (CA_KEY_KEY, &bundle.ca_key),
        (TLS_CERT_KEY, &bundle.tls_crt),
        (TLS_KEY_KEY, &bundle.tls_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
    .collect()
}

fn ca_not_after_text(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The builtin certificate manager of one replica.
pub struct Builtin {
    settings: BuiltinSettings,
    secrets: Api<Secret>,
    configs: Api<ValidatingWebhookConfiguration>,
    store: Arc<CertStore>,
}

/// What one [`Builtin::sync`] did (tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The Secret was created or replaced by this replica.
    pub secret_written: bool,
    /// A different certificate is now served.
    pub reloaded: bool,
    /// Webhooks whose `caBundle` was patched.
    pub ca_bundles_patched: usize,
    /// The ValidatingWebhookConfiguration exists.
    pub config_found: bool,
}

impl Builtin {
    pub fn new(client: Client, settings: BuiltinSettings, store: Arc<CertStore>) -> Self {
        Self {
            secrets: Api::namespaced(client.clone(), &settings.namespace),
            configs: Api::all(client),
            settings,
            store,
        }
    }

    fn secret_error(&self, verb: &'static str) -> impl FnOnce(kube::Error) -> CertError + '_ {
        move |source| CertError::Secret {
            verb,
            namespace: self.settings.namespace.clone(),
            name: self.settings.secret.clone(),
            source: Box::new(source),
        }
    }

    /// Make the Secret valid (creating or renewing it when needed) and return its bundle.
    pub async fn ensure_secret(&self) -> Result<(Bundle, bool), CertError> {
        const ATTEMPTS: u32 = 5;
        let sans = self.settings.sans();
        let name = self.settings.secret.as_str();
        for _ in 0..ATTEMPTS {
            let now = SystemTime::now();
            let current = self
                .secrets
                .get_opt(name)
                .await
                .map_err(self.secret_error("reading"))?;
            let Some(mut secret) = current else {
                let bundle = generate(&sans, now)?;
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(self.settings.namespace.clone()),
                        labels: Some(
                            [
                                ("app.kubernetes.io/managed-by", "stateless-operator"),
                                ("app.kubernetes.io/component", "webhook-certificate"),
                            ]
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        ),
                        annotations: Some(BTreeMap::from([(
                            CA_NOT_AFTER_ANNOTATION.to_string(),
                            ca_not_after_text(bundle.ca_not_after),
                        )])),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".to_string()),
                    data: Some(secret_data(&bundle)),
                    ..Default::default()
                };
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..Default::default()
                };
                match self.secrets.create(&params, &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = name, "created the webhook certificate Secret");
                        return Ok((bundle, true));
                    }
                    // Another replica created it first: adopt theirs.
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => return Err(self.secret_error("creating")(e)),
                }
            };
            let existing = bundle_from_secret(&secret);
            let bundle = match check(existing.as_ref(), &sans, now) {
                Verdict::Valid => match existing {
                    Some(b) => return Ok((b, false)),
                    None => generate(&sans, now)?,
                },
                Verdict::RenewServing(why) => {
                    tracing::info!(
                        secret = name,
                        "renewing the webhook serving certificate: {why}"
                    );
                    match existing {
                        Some(b) => renew_serving(&b, &sans, now)?,
                        None => generate(&sans, now)?,
                    }
                }
                Verdict::Regenerate(why) => {
                    tracing::info!(secret = name, "generating a new webhook CA: {why}");
                    generate(&sans, now)?
                }
            };
            secret.data = Some(secret_data(&bundle));
            secret.string_data = None;
            secret
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(
                    CA_NOT_AFTER_ANNOTATION.to_string(),
                    ca_not_after_text(bundle.ca_not_after),
                );
            secret.metadata.managed_fields = None;
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..Default::default()
            };
            // The read resourceVersion makes this a compare-and-swap.
            match self.secrets.replace(name, &params, &secret).await {
                Ok(_) => return Ok((bundle, true)),
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => continue,
                Err(e) => return Err(self.secret_error("updating")(e)),
            }
        }
        Err(CertError::Contended {
            namespace: self.settings.namespace.clone(),
            name: name.to_string(),
            attempts: ATTEMPTS,
        })
    }

    /// Put `ca_crt` into the `caBundle` of every webhook of the configuration
    /// where it differs. Returns how many were patched (0: nothing written),
    /// `None` when the configuration does not exist (yet).
    pub async fn ensure_ca_bundle(&self, ca_crt: &str) -> Result<Option<usize>, CertError> {
        let name = self.settings.config_name.as_str();
        let err = |verb: &'static str| {
            move |source| CertError::WebhookConfig {
                verb,
                name: name.to_string(),
                source: Box::new(source),
            }
        };
        let Some(config) = self.configs.get_opt(name).await.map_err(err("reading"))? else {
            tracing::debug!(
                config = name,
                "ValidatingWebhookConfiguration not found (yet)"
            );
            return Ok(None);
        };
        let want = ByteString(ca_crt.as_bytes().to_vec());
        let encoded = serde_json::to_value(&want).map_err(CertError::Patch)?;
        let mut ops = Vec::new();
        for (i, hook) in config.webhooks.iter().flatten().enumerate() {
            if hook.client_config.ca_bundle.as_ref() == Some(&want) {
                continue;
            }
            // `test` pins the index to the webhook we looked at.
            ops.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": hook.name}));
            ops.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
        }
        let patched = ops.len() / 2;
        if patched == 0 {
            return Ok(Some(0));
        }
        let patch: json_patch::Patch =
            serde_json::from_value(serde_json::Value::Array(ops)).map_err(CertError::Patch)?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        self.configs
            .patch(name, &params, &Patch::Json::<()>(patch))
            .await
            .map_err(err("patching caBundle of"))?;
        tracing::info!(
            config = name,
            webhooks = patched,
            "patched the webhook caBundle"
        );
        Ok(Some(patched))
    }

    /// One pass: Secret valid, its certificate served, the CA in the configuration.
    pub async fn sync(&self) -> Result<SyncReport, CertError> {
        let (bundle, secret_written) = self.ensure_secret().await?;
        let reloaded = self
            .store
            .install(bundle.tls_crt.as_bytes(), bundle.tls_key.as_bytes())?;
        if reloaded {
            tracing::info!(secret = %self.settings.secret, "serving the webhook certificate from the Secret");
        }
        let patched = self.ensure_ca_bundle(&bundle.ca_crt).await?;
        Ok(SyncReport {
            secret_written,
            reloaded,
            ca_bundles_patched: patched.unwrap_or(0),
            config_found: patched.is_some(),
        })
    }
}

/// "Something changed" of the one object `name` (each pass reads the
/// objects itself), from a watch with its own backoff, logs and metrics.
/// A relist (after an API server restart) counts as a change, so whatever
/// happened while the watch was away gets a pass.
fn changes_of<K>(
    api: Api<K>,
    name: &str,
    watches: &WatchMetrics,
) -> impl Stream<Item = ()> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    without_errors(observed(
        watcher(api, config),
        WatchInfo::new("webhook", &K::kind(&()), watches),
    ))
    .map(|_| ())
}

/// Keep the certificate of this replica and the `caBundle` in sync until
/// `shutdown`: a pass at start, on every change of the Secret or the
/// configuration (watches), and hourly; failed passes are retried with backoff.
pub async fn run_builtin(
    client: Client,
    settings: BuiltinSettings,
    store: Arc<CertStore>,
    watches: WatchMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let secret_events = changes_of(secrets, &settings.secret, &watches).boxed();
    let config_events = changes_of(configs, &settings.config_name, &watches).boxed();
    let mut events = futures::stream::select(secret_events, config_events);
    let builtin = Builtin::new(client, settings, store);
    tokio::pin!(shutdown);
    let mut retry = Duration::from_secs(1);
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            event = events.next() => {
                if event.is_none() {
                    // Both watches ended (they do not, short of a bug): keep the timer.
                    events = futures::stream::select(
                        futures::stream::pending::<()>().boxed(),
                        futures::stream::pending::<()>().boxed(),
                    );
                    continue;
                }
                // A pass soon; a burst of events (the initial list, a
                // replace) coalesces into one.
                next = next.min(tokio::time::Instant::now() + Duration::from_millis(50));
            }
            _ = tokio::time::sleep_until(next) => {
                // A pass waits for the API server; a shutdown must not.
                let pass = tokio::select! {
                    pass = builtin.sync() => pass,
                    _ = &mut shutdown => return,
                };
                match pass {
                    Ok(report) => {
                        tracing::debug!(?report, "webhook certificate pass");
                        retry = Duration::from_secs(1);
                        // A configuration installed after the operator (Helm
                        // applies webhook configurations last) is picked up by
                        // the watch, and by this shorter re-check when the
                        // watch is not permitted.
                        let wait = if report.config_found { RECHECK } else { MISSING_CONFIG_RECHECK };
                        next = tokio::time::Instant::now() + wait;
                    }
                    Err(e) => {
                        tracing::warn!("webhook certificate: {e}; retrying in {retry:?}");
                        next = tokio::time::Instant::now() + retry;
                        retry = (retry * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn sans() -> Vec<String> {
        BuiltinSettings {
            namespace: "ops".into(),
            secret: "s".into(),
            service: "hook".into(),
            config_name: "c".into(),
            extra_sans: vec!["127.0.0.1".into(), " ".into(), "hook.example".into()],
        }
        .sans()
    }

    #[test]
    fn names_cover_service_and_extras() {
        assert_eq!(
            sans(),
            [
                "hook.ops.svc",
                "hook.ops.svc.cluster.local",
                "127.0.0.1",
                "hook.example"
            ]
        );
    }

    #[test]
    fn generated_bundle_is_valid_and_loads() {
        let now = SystemTime::now();
        let b = generate(&sans(), now).expect("generate");
        assert_eq!(check(Some(&b), &sans(), now), Verdict::Valid);
        certified_key(b.tls_crt.as_bytes(), b.tls_key.as_bytes()).expect("serving pair loads");
    }

    #[test]
    fn other_names_need_a_new_serving_certificate_from_the_same_ca() {
        let now = SystemTime::now();
        let b = generate(&sans(), now).expect("generate");
        let more: Vec<String> = sans().into_iter().chain(["10.0.0.7".to_string()]).collect();
        assert!(matches!(
            check(Some(&b), &more, now),
            Verdict::RenewServing(_)
        ));
        let renewed = renew_serving(&b, &more, now).expect("renew");
        assert_eq!(renewed.ca_crt, b.ca_crt, "same CA, same caBundle");
        assert_ne!(renewed.tls_crt, b.tls_crt);
        assert_eq!(check(Some(&renewed), &more, now), Verdict::Valid);
    }

    #[test]
    fn expiring_serving_certificate_is_renewed_and_old_ca_regenerated() {
        let now = SystemTime::now();
        let b = generate(&sans(), now).expect("generate");
        let in_340_days = now + 340 * DAY;
        assert!(matches!(
            check(Some(&b), &sans(), in_340_days),
            Verdict::RenewServing(_)
        ));
        let in_9_5_years = now + 9 * 365 * DAY + 180 * DAY;
        assert!(matches!(
            check(Some(&b), &sans(), in_9_5_years),
            Verdict::Regenerate(_)
        ));
    }

    #[test]
    fn mismatched_or_missing_parts_are_detected() {
        let now = SystemTime::now();
        let a = generate(&sans(), now).expect("generate");
        let b = generate(&sans(), now).expect("generate");
        // Serving certificate of another CA.
        let foreign = Bundle {
            tls_crt: b.tls_crt.clone(),
            tls_key: b.tls_key.clone(),
            ..a.clone()
        };
        assert!(matches!(
            check(Some(&foreign), &sans(), now),
            Verdict::RenewServing(_)
        ));
        // Key of another certificate.
        let wrong_key = Bundle {
            tls_key: b.tls_key.clone(),
            ..a.clone()
        };
        assert!(matches!(
            check(Some(&wrong_key), &sans(), now),
            Verdict::RenewServing(_)
        ));
        // CA key of another CA.
        let wrong_ca_key = Bundle {
            ca_key: b.ca_key.clone(),
            ..a.clone()
        };
        assert!(matches!(
            check(Some(&wrong_ca_key), &sans(), now),
            Verdict::Regenerate(_)
        ));
        assert!(matches!(check(None, &sans(), now), Verdict::Regenerate(_)));
    }

    #[test]
    fn secret_round_trip() {
        let now = SystemTime::now();
        let b = generate(&sans(), now).expect("generate");
        let secret = Secret {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    CA_NOT_AFTER_ANNOTATION.to_string(),
                    ca_not_after_text(b.ca_not_after),
                )])),
                ..Default::default()
            },
            data: Some(secret_data(&b)),
            ..Default::default()
        };
        assert_eq!(bundle_from_secret(&secret), Some(b));
    }
}
