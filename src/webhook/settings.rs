//! Flags of the webhook (flattened into `stateless-operator run`) and the
//! settings they resolve to.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::admission::Policy;
use super::certs::BuiltinSettings;
use crate::rules::{Config, Severity};

/// `--webhook-addr`: a socket address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAddr {
    Off,
    On(SocketAddr),
}

/// A `--webhook-addr` that is neither `off` nor `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `off` or an address like 0.0.0.0:8443, got {0:?}")]
pub struct BadWebhookAddr(String);

impl FromStr for WebhookAddr {
    type Err = BadWebhookAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        s.parse()
            .map(Self::On)
            .map_err(|_| BadWebhookAddr(s.to_string()))
    }
}

impl fmt::Display for WebhookAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::On(a) => a.fmt(f),
        }
    }
}

/// Where the serving certificate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CertMode {
    /// Generate a CA and certificate, keep them in a Secret, patch the caBundle.
    Builtin,
    /// Read tls.crt and tls.key from --webhook-cert-dir (e.g. cert-manager).
    Files,
}

/// The webhook flags of `stateless-operator run`.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Address of the HTTPS admission webhook (POST /validate), or `off`.
    #[arg(long, env = "STATELESS_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub webhook_addr: WebhookAddr,

    /// Where the webhook's serving certificate comes from.
    #[arg(long, env = "STATELESS_WEBHOOK_CERT_MODE", value_enum, default_value_t = CertMode::Builtin)]
    pub webhook_cert_mode: CertMode,

    /// Directory with tls.crt and tls.key (files mode); re-read every 5 seconds.
    #[arg(
        long,
        env = "STATELESS_WEBHOOK_CERT_DIR",
        default_value = "/etc/stateless-operator/webhook-tls"
    )]
    pub webhook_cert_dir: PathBuf,

    /// Name of the webhook's Service (builtin mode: the certificate is for
    /// <service>.<namespace>.svc and .svc.cluster.local).
    #[arg(
        long,
        env = "STATELESS_WEBHOOK_SERVICE",
        default_value = "stateless-operator-webhook"
    )]
    pub webhook_service: String,

    /// Secret in the operator's namespace holding the CA and serving certificate (builtin mode).
    #[arg(
        long,
        env = "STATELESS_WEBHOOK_SECRET",
        default_value = "stateless-operator-webhook-tls"
    )]
    pub webhook_secret: String,

    /// ValidatingWebhookConfiguration whose caBundle the operator keeps current (builtin mode).
    #[arg(
        long,
        env = "STATELESS_WEBHOOK_CONFIG_NAME",
        default_value = "stateless-operator"
    )]
    pub webhook_config_name: String,

    /// Extra DNS name or IP address for the builtin certificate (repeat, or comma-separate).
    #[arg(long, env = "STATELESS_WEBHOOK_EXTRA_SANS", value_delimiter = ',')]
    pub webhook_extra_san: Vec<String>,

    /// In `deny` namespaces, unwaived findings at or above this severity are
    /// denied; lower ones are warnings.
    #[arg(
        long,
        env = "STATELESS_WEBHOOK_DENY_SEVERITY",
        default_value = "medium"
    )]
    pub webhook_deny_severity: Severity,

    /// The operator's namespace: never reviewed, and home of the builtin
    /// certificate Secret. Default: the client's namespace (in-cluster: the pod's).
    #[arg(long, env = "POD_NAMESPACE")]
    pub operator_namespace: Option<String>,
}

/// Certificate source, resolved.
#[derive(Debug, Clone)]
pub enum CertSource {
    Files { dir: PathBuf, poll: Duration },
    Builtin(BuiltinSettings),
}

/// Everything [`super::start`] needs.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub addr: SocketAddr,
    pub certs: CertSource,
    pub policy: Policy,
    /// After shutdown is signalled, keep accepting requests this long: the
    /// API server keeps sending to a terminating pod until its endpoint is
    /// removed, and with `failurePolicy: Fail` a refused connection is a
    /// refused request.
    pub drain_delay: Duration,
}

/// How often `files` mode re-reads the certificate.
pub const FILES_POLL: Duration = Duration::from_secs(5);
/// [`WebhookSettings::drain_delay`] of `run`.
pub const DRAIN_DELAY: Duration = Duration::from_secs(3);

impl WebhookArgs {
    /// The operator's namespace: the flag, else `default_namespace`.
    pub fn operator_namespace(&self, default_namespace: &str) -> String {
        self.operator_namespace
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(default_namespace)
            .to_string()
    }

    /// `None` when the webhook is `off`.
    pub fn settings(&self, default_namespace: &str) -> Option<WebhookSettings> {
        let WebhookAddr::On(addr) = self.webhook_addr else {
            return None;
        };
        let namespace = self.operator_namespace(default_namespace);
        let certs = match self.webhook_cert_mode {
            CertMode::Files => CertSource::Files {
                dir: self.webhook_cert_dir.clone(),
                poll: FILES_POLL,
            },
            CertMode::Builtin => CertSource::Builtin(BuiltinSettings {
                namespace: namespace.clone(),
                secret: self.webhook_secret.clone(),
                service: self.webhook_service.clone(),
                config_name: self.webhook_config_name.clone(),
                extra_sans: self.webhook_extra_san.clone(),
            }),
        };
        Some(WebhookSettings {
            addr,
            certs,
            policy: Policy {
                operator_namespace: Some(namespace),
                deny_severity: self.webhook_deny_severity,
                config: Config::default(),
            },
            drain_delay: DRAIN_DELAY,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    #[test]
    fn defaults_and_off() {
        let cli = Cli::try_parse_from(["x"]).expect("defaults parse");
        let s = cli.webhook.settings("ops").expect("on by default");
        assert_eq!(s.addr, "0.0.0.0:8443".parse().expect("addr"));
        assert_eq!(s.policy.operator_namespace.as_deref(), Some("ops"));
        assert_eq!(s.policy.deny_severity, Severity::Medium);
        assert_eq!(s.drain_delay, DRAIN_DELAY);
        match s.certs {
            CertSource::Builtin(b) => {
                assert_eq!(b.namespace, "ops");
                assert_eq!(b.secret, "stateless-operator-webhook-tls");
                assert_eq!(b.config_name, "stateless-operator");
                assert_eq!(b.sans()[0], "stateless-operator-webhook.ops.svc");
            }
            other => panic!("expected builtin, got {other:?}"),
        }
        let off = Cli::try_parse_from(["x", "--webhook-addr", "off"]).expect("off parses");
        assert!(off.webhook.settings("ops").is_none());
        assert!(Cli::try_parse_from(["x", "--webhook-addr", "nonsense"]).is_err());
    }

    #[test]
    fn files_mode_and_sans() {
        let cli = Cli::try_parse_from([
            "x",
            "--webhook-cert-mode",
            "files",
            "--webhook-cert-dir",
            "/certs",
            "--operator-namespace",
            "op",
            "--webhook-extra-san",
            "127.0.0.1,hook.example",
            "--webhook-deny-severity",
            "high",
        ])
        .expect("parse");
        let s = cli.webhook.settings("default").expect("on");
        assert_eq!(s.policy.operator_namespace.as_deref(), Some("op"));
        assert_eq!(s.policy.deny_severity, Severity::High);
        assert!(
            matches!(s.certs, CertSource::Files { ref dir, .. } if dir == &PathBuf::from("/certs"))
        );
        assert_eq!(cli.webhook.webhook_extra_san, ["127.0.0.1", "hook.example"]);
    }
}
