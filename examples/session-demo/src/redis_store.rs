//! The session store: one Redis `ConnectionManager` (it reconnects by itself),
//! created on first use, behind time limits. No error message of this module
//! carries the URL or the password: every reason is redacted before it is
//! stored, and the target is shown as `host:port/db` only.

use std::cmp::Reverse;
use std::env::{self, VarError};
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use crate::session;

/// Limit for one connection attempt and for one reply on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one BLPOP blocks: under [`IO_TIMEOUT`], the connection's reply
/// limit, so an empty queue is not taken for a dead connection.
const JOB_WAIT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{var} is not set")]
    UrlNotSet { var: String },
    #[error("{var} is not valid UTF-8")]
    UrlNotUnicode { var: String },
    #[error("{reason}")]
    Binding { reason: String },
    #[error("{var} is not a usable Redis URL: {reason}")]
    InvalidUrl { var: String, reason: String },
    #[error("Redis at {target}: {reason}")]
    Redis { target: String, reason: String },
    #[error("Redis at {target} did not answer within {millis} ms")]
    Timeout { target: String, millis: u128 },
}

pub struct Store {
    client: redis::Client,
    /// `host:port/db`, safe to log.
    target: String,
    secrets: Secrets,
    /// Made on first use; a failed attempt leaves it empty for the next one.
    manager: Mutex<Option<ConnectionManager>>,
}

impl Store {
    /// The store whose URL is in environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, StoreError> {
        match env::var(var) {
            Ok(url) => Self::from_url(var, &url),
            Err(VarError::NotPresent) => Err(StoreError::UrlNotSet {
                var: var.to_owned(),
            }),
            Err(VarError::NotUnicode(_)) => Err(StoreError::UrlNotUnicode {
                var: var.to_owned(),
            }),
        }
    }

    /// The store at `url` (`redis://[:PASSWORD@]host[:port][/db]`), read from
    /// variable `var` (named in errors). Parses only: nothing is dialled.
    pub fn from_url(var: &str, url: &str) -> Result<Self, StoreError> {
        if url.trim().is_empty() {
            return Err(StoreError::UrlNotSet {
                var: var.to_owned(),
            });
        }
        let mut secrets = Secrets::from_url(url);
        let client = redis::Client::open(url).map_err(|e| StoreError::InvalidUrl {
            var: var.to_owned(),
            reason: secrets.redact(&e.to_string()),
        })?;
        let info = client.get_connection_info();
        if let Some(password) = info.redis_settings().password() {
            secrets.add(password);
        }
        let target = format!("{}/{}", info.addr(), info.redis_settings().db());
        Ok(Self {
            client,
            target,
            secrets,
            manager: Mutex::new(None),
        })
    }

    /// Where the store is, without credentials: `host:port/db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// PING (after the AUTH and SELECT the URL implies); the reply, `PONG`.
    pub async fn ping(&self, limit: Duration) -> Result<String, StoreError> {
        self.within(limit, async {
            let mut conn = self.connection().await?;
            redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Counts one visit of session `id` and (re)arms its expiry, atomically
    /// (MULTI/EXEC); the number of visits so far.
    pub async fn visit(&self, id: &str, limit: Duration) -> Result<i64, StoreError> {
        let key = session::visits_key(id);
        self.within(limit, async {
            let mut conn = self.connection().await?;
            let (visits,): (i64,) = redis::pipe()
                .atomic()
                .incr(&key, 1)
                .expire(&key, session::TTL_SECONDS)
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(&e))?;
            Ok(visits)
        })
        .await
    }

    /// Appends `job` to the queue `queue` (RPUSH); the queue's length after.
    pub async fn push_job(
        &self,
        queue: &str,
        job: &str,
        limit: Duration,
    ) -> Result<i64, StoreError> {
        self.within(limit, async {
            let mut conn = self.connection().await?;
            redis::cmd("RPUSH")
                .arg(queue)
                .arg(job)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Takes the oldest job of `queue`, waiting up to [`JOB_WAIT`] for one
    /// (BLPOP): a job goes to exactly one of the workers waiting.
    pub async fn pop_job(&self, queue: &str) -> Result<Option<String>, StoreError> {
        self.within(JOB_WAIT + IO_TIMEOUT, async {
            let mut conn = self.connection().await?;
            let popped: Option<(String, String)> = redis::cmd("BLPOP")
                .arg(queue)
                .arg(JOB_WAIT.as_secs_f64())
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error(&e))?;
            Ok(popped.map(|(_, job)| job))
        })
        .await
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| self.error(&e))?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    async fn within<T>(
        &self,
        limit: Duration,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(limit, op).await.unwrap_or_else(|_| {
            Err(StoreError::Timeout {
                target: self.target.clone(),
                millis: limit.as_millis(),
            })
        })
    }

    fn error(&self, e: &redis::RedisError) -> StoreError {
        StoreError::Redis {
            target: self.target.clone(),
            reason: self.secrets.redact(&e.to_string()),
        }
    }
}

/// Strings that must never appear in a message: the whole URL, the password
/// as written in it (maybe percent-encoded) and decoded.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn from_url(url: &str) -> Self {
        let mut secrets = Self::default();
        secrets.add(url);
        if let Some(password) = raw_password(url) {
            secrets.add(password);
        }
        secrets
    }

    fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.0.iter().any(|s| s == secret) {
            self.0.push(secret.to_owned());
            // Longest first, so the URL goes before the password inside it.
            self.0.sort_by_key(|s| Reverse(s.len()));
        }
    }

    fn redact(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
    }
}

/// The password in `scheme://user:PASSWORD@host…`, as written.
fn raw_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let (_user, password) = userinfo.split_once(':')?;
    Some(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{ErrorKind, RedisError};

    const PASSWORD: &str = "hunter2/p@ss:word";
    const ENCODED: &str = "hunter2%2Fp%40ss%3Aword";

    fn url(host_port: &str) -> String {
        format!("redis://:{ENCODED}@{host_port}/0")
    }

    fn assert_no_secret(message: &str) {
        for secret in [PASSWORD, ENCODED, "hunter2"] {
            assert!(
                !message.contains(secret),
                "{secret:?} leaked in {message:?}"
            );
        }
    }

    #[test]
    fn unset_variable_is_named() {
        let var = "SESSION_DEMO_TEST_URL_NEVER_SET";
        let err = Store::from_env(var).err().unwrap();
        assert_eq!(err.to_string(), format!("{var} is not set"));
        let err = Store::from_url("SESSION_URL", "  ").err().unwrap();
        assert_eq!(err.to_string(), "SESSION_URL is not set");
    }

    #[test]
    fn invalid_urls_name_the_variable_not_the_password() {
        for bad in [
            format!("redis://:{ENCODED}@redis.ns.svc:6379/notadb"),
            format!("http://:{ENCODED}@redis.ns.svc"),
            format!("redis://:{ENCODED}@0.0.0.0:6379"),
        ] {
            let err = Store::from_url("SESSION_URL", &bad).err().unwrap();
            assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.starts_with("SESSION_URL is not a usable Redis URL: "),
                "{message}"
            );
            assert_no_secret(&message);
        }
    }

    #[test]
    fn target_is_host_port_db_and_password_is_decoded() {
        let store = Store::from_url("REDIS_URL", "redis://:p%40ss@redis.ns.svc:6380/2").unwrap();
        assert_eq!(store.target(), "redis.ns.svc:6380/2");
        assert_eq!(
            store
                .client
                .get_connection_info()
                .redis_settings()
                .password(),
            Some("p@ss")
        );
        let store = Store::from_url("REDIS_URL", "redis://127.0.0.1").unwrap();
        assert_eq!(store.target(), "127.0.0.1:6379/0");
    }

    #[test]
    fn redis_errors_are_redacted() {
        let store = Store::from_url("REDIS_URL", &url("redis.ns.svc:6379")).unwrap();
        let detail = format!(
            "dialing {} (password {PASSWORD}, raw {ENCODED})",
            url("redis.ns.svc:6379")
        );
        let err = store.error(&RedisError::from((ErrorKind::Io, "connect failed", detail)));
        let message = err.to_string();
        assert_no_secret(&message);
        assert!(
            message.starts_with("Redis at redis.ns.svc:6379/0: connect failed"),
            "{message}"
        );
        assert_eq!(message.matches("***").count(), 3, "{message}");
    }

    #[test]
    fn raw_password_is_the_userinfo_after_the_colon() {
        assert_eq!(raw_password("redis://:pw@h:1/0"), Some("pw"));
        assert_eq!(raw_password("redis://user:p%40w@h"), Some("p%40w"));
        assert_eq!(raw_password("redis://h:6379/0"), None);
        assert_eq!(raw_password("redis://user@h"), None);
    }

    #[tokio::test]
    async fn connection_errors_do_not_carry_the_password() {
        // A loopback port that was just free: the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = Store::from_url("REDIS_URL", &url(&format!("127.0.0.1:{port}"))).unwrap();
        let err = store.ping(Duration::from_secs(3)).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("Redis at 127.0.0.1:{port}/0")),
            "{message}"
        );
        assert_no_secret(&message);
        // Nothing was cached: the next call dials again and fails the same way.
        let again = store.ping(Duration::from_secs(3)).await.unwrap_err();
        assert!(
            matches!(again, StoreError::Redis { .. } | StoreError::Timeout { .. }),
            "{again:?}"
        );
    }
}
