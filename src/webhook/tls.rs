//! The serving certificate: a rustls resolver whose certificate is swapped
//! atomically while the server runs, PEM loading, and the `files` mode poller
//! (cert-manager mounts `tls.crt`/`tls.key` and rotates them in place).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// Errors loading a certificate or building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing the PEM of the {what}: {source}")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate PEM holds no CERTIFICATE block")]
    NoCertificate,
    #[error("the private key does not fit the certificate: {0}")]
    Key(#[source] rustls::Error),
    #[error("building the TLS server configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The crypto provider of the webhook: ring, the one kube's client uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parse a PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
/// PKCS#1 or SEC1) into a rustls key, checking that they belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "certificate",
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::Pem {
        what: "private key",
        source,
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Key)
}

/// A TLS server configuration that takes its certificate from `resolver` on
/// every handshake, speaking HTTP/1.1 (the API server's webhook client uses it
/// when HTTP/2 is not offered).
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

struct Current {
    key: Arc<CertifiedKey>,
    digest: [u8; 32],
}

/// The certificate the server presents. Replacing it is one pointer swap
/// under a lock that handshakes hold only to clone an `Arc`, so a reload never
/// interrupts a connection and new handshakes see the new certificate at once.
pub struct CertStore {
    current: RwLock<Option<Current>>,
    loads: Counter,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("loaded", &self.current().is_some())
            .finish()
    }
}

impl CertStore {
    /// An empty store (handshakes fail until a certificate is installed);
    /// `loads` counts installations.
    pub fn new(loads: Counter) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(None),
            loads,
        })
    }

    /// The certificate currently served.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(guard) => guard.as_ref().map(|c| c.key.clone()),
            Err(poisoned) => poisoned.get_ref().as_ref().map(|c| c.key.clone()),
        }
    }

    /// Serve `cert_pem`/`key_pem` from now on. Returns `Ok(false)` without
    /// touching anything when they are the ones already served; on error the
    /// previous certificate stays.
    pub fn install(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<bool, TlsError> {
        let mut hasher = Sha256::new();
        hasher.update(cert_pem);
        hasher.update([0u8]);
        hasher.update(key_pem);
        let digest: [u8; 32] = hasher.finalize().into();
        if self.digest() == Some(digest) {
            return Ok(false);
        }
        let key = Arc::new(certified_key(cert_pem, key_pem)?);
        let next = Some(Current { key, digest });
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        self.loads.inc();
        Ok(true)
    }

    fn digest(&self) -> Option<[u8; 32]> {
        match self.current.read() {
            Ok(guard) => guard.as_ref().map(|c| c.digest),
            Err(poisoned) => poisoned.get_ref().as_ref().map(|c| c.digest),
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.current();
        if key.is_none() {
            tracing::warn!("TLS handshake refused: no webhook serving certificate loaded yet");
        }
        key
    }
}

/// Certificate and key file names in `--webhook-cert-dir` (cert-manager's).
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// Load `dir/tls.crt` and `dir/tls.key` once.
pub async fn load_dir(dir: &Path, store: &CertStore) -> Result<bool, TlsError> {
    let dir = dir.to_path_buf();
    // Two small files: read them off the async workers.
    let read = tokio::task::spawn_blocking(move || {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| TlsError::Read { path, source })
        };
        Ok::<_, TlsError>((read(CERT_FILE)?, read(KEY_FILE)?))
    })
    .await
    .map_err(|e| TlsError::Read {
        path: PathBuf::from(CERT_FILE),
        source: std::io::Error::other(e),
    })?;
    let (cert, key) = read?;
    store.install(&cert, &key)
}

/// `files` mode: load the pair from `dir` and re-read it every `poll`,
/// installing it whenever its content changes (cert-manager renews in place
/// through the kubelet's atomic symlink swap). A half-written or mismatched
/// pair is reported and retried; the previous certificate keeps serving.
pub async fn watch_dir(
    dir: PathBuf,
    store: Arc<CertStore>,
    poll: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last_error: Option<String> = None;
    loop {
        match load_dir(&dir, &store).await {
            Ok(true) => {
                tracing::info!(dir = %dir.display(), "loaded the webhook serving certificate");
                last_error = None;
            }
            Ok(false) => last_error = None,
            Err(e) => {
                let text = e.to_string();
                // Once per distinct problem, not every poll.
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(dir = %dir.display(), "webhook certificate not (re)loaded: {text}");
                    last_error = Some(text);
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::webhook::certs::generate;

    fn leaf(store: &CertStore) -> Vec<u8> {
        store
            .current()
            .and_then(|k| k.cert.first().map(|c| c.to_vec()))
            .unwrap_or_default()
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn files_are_reloaded_when_they_change_and_bad_pairs_are_ignored() {
        let names = vec!["hook.ops.svc".to_string()];
        let a = generate(&names, SystemTime::now()).expect("a");
        let b = generate(&names, SystemTime::now()).expect("b");
        let dir = std::env::temp_dir().join(format!(
            "stateless-webhook-tls-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let write = |crt: &str, key: &str| {
            std::fs::write(dir.join(CERT_FILE), crt).expect("write crt");
            std::fs::write(dir.join(KEY_FILE), key).expect("write key");
        };
        let store = CertStore::new(Counter::default());
        assert!(store.current().is_none());
        write(&a.tls_crt, &a.tls_key);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(watch_dir(
            dir.clone(),
            store.clone(),
            Duration::from_millis(20),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let wait_for = |want: Vec<u8>| {
            let store = store.clone();
            async move {
                for _ in 0..250 {
                    if leaf(&store) == want {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                false
            }
        };
        assert!(wait_for(der(&a.tls_crt)).await, "first pair loaded");
        // cert-manager renewed: new pair served, no restart.
        write(&b.tls_crt, &b.tls_key);
        assert!(wait_for(der(&b.tls_crt)).await, "renewed pair loaded");
        // Half-written (new cert, old key): the previous pair keeps serving.
        write(&a.tls_crt, &b.tls_key);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(leaf(&store), der(&b.tls_crt));
        let _ = stop_tx.send(());
        task.await.expect("poller ends on shutdown");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn install_is_idempotent_and_rejects_garbage() {
        let names = vec!["hook.ops.svc".to_string()];
        let a = generate(&names, SystemTime::now()).expect("a");
        let loads = Counter::default();
        let store = CertStore::new(loads.clone());
        assert!(matches!(
            store.install(b"junk", b"junk"),
            Err(TlsError::NoCertificate)
        ));
        assert!(
            store
                .install(a.tls_crt.as_bytes(), a.tls_key.as_bytes())
                .expect("install")
        );
        assert!(
            !store
                .install(a.tls_crt.as_bytes(), a.tls_key.as_bytes())
                .expect("same")
        );
        assert_eq!(loads.get(), 1);
        assert!(matches!(
            store.install(a.tls_crt.as_bytes(), a.ca_key.as_bytes()),
            Err(TlsError::Key(_))
        ));
        assert_eq!(leaf(&store), der(&a.tls_crt));
    }
}
