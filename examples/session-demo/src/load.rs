//! `session-demo load`: the load client of the experiment. N clients, each a
//! "browser" with its own session cookie, send `GET` one after another until
//! the time or the request budget is used up, and count what a user would
//! notice: errors, and sessions lost (the visit count going back).
//!
//! Every request goes on a new TCP connection and says `Connection: close`.
//! A Service (kube-proxy) balances connections, not requests: on one
//! kept-alive connection a client would stay on one pod and never see
//! another. A new connection per request is balanced per request, as many
//! browsers behind a balancer are, so a session pinned to one pod's memory is
//! found out.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{CONNECTION, COOKIE, HOST, SET_COOKIE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::{Host, Url};

use crate::session::COOKIE_NAME;

/// Where the requests go, from an `http://HOST[:PORT]/PATH` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: Host<String>,
    port: u16,
    /// The `Host` header: the host as written (normalised), with the port if
    /// the URL gave one.
    authority: String,
    /// Path and query.
    path: String,
}

/// `--url`: only `http://` (the demo speaks plain HTTP/1), a host, no
/// credentials. Host names are resolved at each connection (tokio's resolver,
/// the system's, so cluster DNS names work inside a pod).
pub fn parse_target(s: &str) -> Result<Target, String> {
    if !s.contains("://") {
        return Err(format!(
            "{s:?} is not an http:// URL; expected http://HOST[:PORT]/PATH"
        ));
    }
    let url =
        Url::parse(s).map_err(|e| format!("not a URL ({e}); expected http://HOST[:PORT]/PATH"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "only http:// URLs are supported, not {}://",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not supported".to_owned());
    }
    let (Some(host), Some(host_str)) = (url.host(), url.host_str()) else {
        return Err("the URL has no host; expected http://HOST[:PORT]/PATH".to_owned());
    };
    if host_str.is_empty() {
        return Err("the URL has no host; expected http://HOST[:PORT]/PATH".to_owned());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let authority = match url.port() {
        Some(port) => format!("{host_str}:{port}"),
        None => host_str.to_owned(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        authority,
        path,
    })
}

/// What one run is allowed: both bounds are required (checked by the CLI).
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub clients: u32,
    pub duration: Duration,
    pub max_requests: u64,
    /// Pause of each client between two of its requests.
    pub interval: Duration,
    /// Limit for one request: connect, send, the whole response.
    pub timeout: Duration,
}

/// The line `load` prints: totals over all clients.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub clients: u32,
    pub requests: u64,
    pub errors: u64,
    pub lost: u64,
    /// Successful answers per `served_by`.
    pub per_pod: BTreeMap<String, u64>,
    pub elapsed_ms: u64,
}

/// One client's counts.
#[derive(Debug, Default)]
struct ClientStats {
    requests: u64,
    errors: u64,
    lost: u64,
    per_pod: BTreeMap<String, u64>,
    /// Errors by kind (`connect`, `timeout`, `status 503`…), for stderr only.
    error_kinds: BTreeMap<String, u64>,
}

impl ClientStats {
    fn error(&mut self, kind: impl Into<String>) {
        self.errors += 1;
        *self.error_kinds.entry(kind.into()).or_default() += 1;
    }
}

/// Lost-session accounting of one client. A session's count grows by one per
/// visit; an answer whose `visits` is not greater than the last one seen
/// means the serving pod did not have the session (it started again at 1):
/// one lost session. Counting goes on from the new value. Requests that
/// failed are not seen, so a count that jumps ahead is not a loss.
#[derive(Debug, Default)]
pub struct SessionTracker {
    last: Option<i64>,
}

impl SessionTracker {
    /// Records one answer's `visits`; whether it shows a lost session.
    pub fn observe(&mut self, visits: i64) -> bool {
        let lost = self.last.is_some_and(|last| visits <= last);
        self.last = Some(visits);
        lost
    }
}

/// Runs the plan: every client until the duration is over or the budget
/// used up (a request in flight then finishes, within its timeout). Errors
/// are counted, never returned.
pub async fn run(plan: Plan) -> Summary {
    let plan = Arc::new(plan);
    let budget = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let clients: Vec<_> = (0..plan.clients)
        .map(|_| tokio::spawn(client(Arc::clone(&plan), Arc::clone(&budget), deadline)))
        .collect();
    let mut summary = Summary {
        clients: plan.clients,
        ..Summary::default()
    };
    let mut error_kinds: BTreeMap<String, u64> = BTreeMap::new();
    for handle in clients {
        let stats = match handle.await {
            Ok(stats) => stats,
            Err(e) => {
                // A client task cannot panic by design; say so if one did.
                eprintln!("load: a client task failed: {e}");
                continue;
            }
        };
        summary.requests += stats.requests;
        summary.errors += stats.errors;
        summary.lost += stats.lost;
        for (pod, n) in stats.per_pod {
            *summary.per_pod.entry(pod).or_default() += n;
        }
        for (kind, n) in stats.error_kinds {
            *error_kinds.entry(kind).or_default() += n;
        }
    }
    summary.elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    if !error_kinds.is_empty() {
        let kinds: Vec<String> = error_kinds
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        eprintln!("load: errors by kind: {}", kinds.join(", "));
    }
    summary
}

async fn client(plan: Arc<Plan>, budget: Arc<AtomicU64>, deadline: Instant) -> ClientStats {
    let mut stats = ClientStats::default();
    // The cookie jar: only the `sid` cookie matters.
    let mut sid: Option<String> = None;
    let mut tracker = SessionTracker::default();
    loop {
        if Instant::now() >= deadline || budget.fetch_add(1, Ordering::Relaxed) >= plan.max_requests
        {
            break;
        }
        stats.requests += 1;
        match tokio::time::timeout(plan.timeout, get(&plan.target, sid.as_deref())).await {
            Err(_) => stats.error("timeout"),
            Ok(Err(e)) => stats.error(e),
            Ok(Ok(reply)) => {
                if let Some(new) = reply.sid {
                    sid = Some(new);
                }
                if reply.status != StatusCode::OK {
                    stats.error(format!("status {}", reply.status.as_u16()));
                } else {
                    match serde_json::from_slice::<Visit>(&reply.body) {
                        Ok(visit) => {
                            if tracker.observe(visit.visits) {
                                stats.lost += 1;
                            }
                            *stats.per_pod.entry(visit.served_by).or_default() += 1;
                        }
                        Err(_) => stats.error("body not a session answer"),
                    }
                }
            }
        }
        if !plan.interval.is_zero() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(plan.interval.min(deadline - now)).await;
        }
    }
    stats
}

/// The fields of `/session`'s answer that the client reads.
#[derive(Deserialize)]
struct Visit {
    visits: i64,
    served_by: String,
}

struct Reply {
    status: StatusCode,
    /// The `sid` the answer set, if it set one.
    sid: Option<String>,
    body: Bytes,
}

/// One `GET` on a connection of its own (`Connection: close`); on failure,
/// the kind of error.
async fn get(target: &Target, sid: Option<&str>) -> Result<Reply, &'static str> {
    let stream = match &target.host {
        Host::Domain(name) => TcpStream::connect((name.as_str(), target.port)).await,
        Host::Ipv4(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V4(*ip), target.port)).await,
        Host::Ipv6(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V6(*ip), target.port)).await,
    }
    .map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "http")?;
    let mut request = Request::get(target.path.as_str())
        .header(HOST, target.authority.as_str())
        .header(CONNECTION, "close");
    if let Some(sid) = sid {
        request = request.header(COOKIE, format!("{COOKIE_NAME}={sid}"));
    }
    let request = request.body(Empty::<Bytes>::new()).map_err(|_| "request")?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(|_| "http")?;
        let status = response.status();
        let sid = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(sid_from_set_cookie);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| "http")?
            .to_bytes();
        Ok(Reply { status, sid, body })
    };
    // The connection is driven here, beside the exchange, not in a task of
    // its own: it ends with the answer (Connection: close), and a timeout
    // drops both.
    let (reply, _closed) = tokio::join!(exchange, connection);
    reply
}

/// The session id in a `Set-Cookie` value, when it sets `sid`.
fn sid_from_set_cookie(value: &str) -> Option<String> {
    let (name, rest) = value.split(';').next()?.split_once('=')?;
    let id = rest.trim().trim_matches('"');
    (name.trim() == COOKIE_NAME && !id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Lost sessions in one client's sequence of `visits`.
    fn lost_sessions<const N: usize>(visits: [i64; N]) -> u64 {
        let mut tracker = SessionTracker::default();
        visits.map(|v| u64::from(tracker.observe(v))).iter().sum()
    }

    #[test]
    fn lost_sessions_count_each_time_the_count_goes_back() {
        assert_eq!(lost_sessions([]), 0);
        assert_eq!(lost_sessions([1, 2, 3, 4]), 0);
        // Failed requests leave gaps: a count that jumps ahead is no loss.
        assert_eq!(lost_sessions([1, 2, 5, 6]), 0);
        // Back to 1 once: one loss, then counting goes on from there.
        assert_eq!(lost_sessions([1, 2, 3, 1, 2, 3]), 1);
        // Alternating between two pods' memories (1 1 2 2 3 3): the count
        // fails to grow at every other answer; each of those is a loss.
        assert_eq!(lost_sessions([1, 1, 2, 2, 3, 3]), 3);
        // Not greater is a loss too (the same count twice).
        assert_eq!(lost_sessions([4, 4]), 1);
        // Back, but not to 1 (another pod had an older copy).
        assert_eq!(lost_sessions([1, 2, 3, 4, 2, 3, 1]), 2);
        // The first answer is never a loss, whatever its count.
        assert_eq!(lost_sessions([7]), 0);
    }

    #[test]
    fn tracker_reports_the_loss_on_the_answer_that_shows_it() {
        let mut t = SessionTracker::default();
        assert_eq!(
            [1, 2, 1, 2, 3, 1].map(|v| t.observe(v)),
            [false, false, true, false, false, true]
        );
    }

    #[test]
    fn urls_parse_into_host_port_authority_and_path() {
        let t = parse_target("http://demo.ns.svc/session").unwrap();
        assert_eq!(t.host, Host::Domain("demo.ns.svc".to_owned()));
        assert_eq!(
            (t.port, t.authority.as_str(), t.path.as_str()),
            (80, "demo.ns.svc", "/session")
        );

        let t = parse_target("http://127.0.0.1:8080/session?x=1").unwrap();
        assert_eq!(t.host, Host::<String>::Ipv4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (t.port, t.authority.as_str(), t.path.as_str()),
            (8080, "127.0.0.1:8080", "/session?x=1")
        );

        let t = parse_target("http://[::1]:9000").unwrap();
        assert_eq!(t.host, Host::<String>::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            (t.port, t.authority.as_str(), t.path.as_str()),
            (9000, "[::1]:9000", "/")
        );

        // Scheme and host are case-insensitive; the default port is left out
        // of the Host header, as browsers do.
        let t = parse_target("HTTP://Demo:80/").unwrap();
        assert_eq!(t.host, Host::Domain("demo".to_owned()));
        assert_eq!((t.port, t.authority.as_str()), (80, "demo"));
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            (
                "https://demo/session",
                "only http:// URLs are supported, not https://",
            ),
            ("ftp://demo/", "only http:// URLs are supported, not ftp://"),
            (
                "demo:8080/session",
                "\"demo:8080/session\" is not an http:// URL",
            ),
            ("127.0.0.1:8080", "\"127.0.0.1:8080\" is not an http:// URL"),
            ("/session", "\"/session\" is not an http:// URL"),
            ("", "\"\" is not an http:// URL"),
            ("://demo", "not a URL"),
            ("http://", "not a URL"),
            (
                "http://user:pw@demo/",
                "credentials in the URL are not supported",
            ),
            ("http://demo:99999/", "not a URL"),
        ] {
            let err = parse_target(url).unwrap_err();
            assert!(err.starts_with(reason), "{url:?}: {err}");
        }
    }

    #[test]
    fn the_sid_is_read_from_set_cookie() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            sid_from_set_cookie(&format!("sid={id}; Path=/; HttpOnly; SameSite=Lax")),
            Some(id.to_owned())
        );
        assert_eq!(
            sid_from_set_cookie(&format!("sid={id}")),
            Some(id.to_owned())
        );
        assert_eq!(sid_from_set_cookie("theme=dark; Path=/"), None);
        assert_eq!(sid_from_set_cookie("xsid=abc"), None);
        assert_eq!(sid_from_set_cookie("sid=; Path=/"), None);
        assert_eq!(sid_from_set_cookie("garbage"), None);
    }

    #[test]
    fn the_summary_is_one_json_object_in_the_contract_order() {
        let summary = Summary {
            clients: 2,
            requests: 10,
            errors: 1,
            lost: 3,
            per_pod: BTreeMap::from([("pod-b".to_owned(), 4), ("pod-a".to_owned(), 5)]),
            elapsed_ms: 1234,
        };
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"clients":2,"requests":10,"errors":1,"lost":3,"per_pod":{"pod-a":5,"pod-b":4},"elapsed_ms":1234}"#
        );
    }
}
