//! session-demo against a real redis-server on 127.0.0.1 (with a password):
//! readiness, the session counter, `redis-ping`, a wrong password, and Redis
//! going away. Every process started here is killed when the test ends, also
//! when it fails (ProcessGuard). Traffic goes to 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_session-demo");
/// Needs percent-encoding in a URL (`/`, `@`, `:`): the URL parser must decode it.
const PASSWORD: &str = "t3st/p@ss:word";
const ENCODED: &str = "t3st%2Fp%40ss%3Aword";
const WRONG_PASSWORD: &str = "not-the-password-42";

/// Kills and reaps its process when dropped.
struct ProcessGuard {
    name: &'static str,
    child: Child,
}

impl ProcessGuard {
    fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status within `limit`, or None if it is still running.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => sleep(Duration::from_millis(50)),
                Err(e) => panic!("waiting for {}: {e}", self.name),
            }
        }
        None
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {limit:?}");
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// One HTTP/1.1 GET to 127.0.0.1:`port` (Connection: close), or the I/O error.
fn get(port: u16, path: &str, cookie: Option<&str>) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Connection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn must_get(port: u16, path: &str, cookie: Option<&str>) -> Reply {
    get(port, path, cookie).unwrap_or_else(|e| panic!("GET {path} on {port}: {e}"))
}

fn redis_url(password: &str, redis_port: u16) -> String {
    format!("redis://:{password}@127.0.0.1:{redis_port}/0")
}

fn app(redis_url: &str, port: u16) -> ProcessGuard {
    let guard = ProcessGuard::spawn(
        "session-demo serve",
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("REDIS_URL", redis_url)
            .env("POD_NAME", "test-pod")
            .env_remove("REDIS_URL_ENV")
            .env_remove("LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_until(
        "session-demo answers /healthz",
        Duration::from_secs(15),
        || get(port, "/healthz", None).is_ok_and(|r| r.status == 200),
    );
    guard
}

fn redis_ping(redis_url: Option<&str>, extra: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("redis-ping")
        .args(extra)
        .env_remove("REDIS_URL")
        .env_remove("REDIS_URL_ENV")
        .stdin(Stdio::null());
    if let Some(url) = redis_url {
        command.env("REDIS_URL", url);
    }
    command.output().expect("run session-demo redis-ping")
}

fn set_cookie_sid(reply: &Reply) -> String {
    let cookie = reply
        .header("set-cookie")
        .expect("Set-Cookie on a new session");
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    let sid = cookie
        .strip_prefix("sid=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("{cookie}"));
    assert!(
        sid.len() == 32 && sid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{sid}"
    );
    sid.to_owned()
}

#[test]
fn sessions_live_in_redis() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!(
            "redis-server is not on PATH; this test needs it (it does not skip). \
             Install it with: apt-get install -y --no-install-recommends redis-server"
        );
    }
    let redis_port = free_port();
    let mut redis = ProcessGuard::spawn(
        "redis-server",
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &redis_port.to_string()])
            .args([
                "--requirepass",
                PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", env!("CARGO_TARGET_TMPDIR"), "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_until(
        "redis-server accepts connections",
        Duration::from_secs(10),
        || TcpStream::connect(("127.0.0.1", redis_port)).is_ok(),
    );
    let good_url = redis_url(ENCODED, redis_port);
    let port = free_port();
    let mut serve = app(&good_url, port);

    // Ready, liveness.
    let ready = must_get(port, "/readyz", None);
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    let health = must_get(port, "/healthz", None);
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    // A new session, then the same cookie twice (once among other cookies).
    let first = must_get(port, "/", None);
    assert_eq!(first.status, 200, "{}", first.body);
    let sid = set_cookie_sid(&first);
    let body = first.json();
    assert_eq!(body["session"], sid.as_str());
    assert_eq!(body["visits"], 1);
    assert_eq!(body["servedBy"], "test-pod");

    let second = must_get(port, "/", Some(&format!("sid={sid}")));
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(
        second.header("set-cookie"),
        None,
        "a known session gets no new cookie"
    );
    assert_eq!(second.json()["session"], sid.as_str());
    assert_eq!(second.json()["visits"], 2);

    let third = must_get(port, "/", Some(&format!("theme=dark; sid={sid}; lang=en")));
    assert_eq!(third.json()["visits"], 3);

    // No cookie, or a malformed one: a new session.
    for cookie in [None, Some("sid=not-a-session-id")] {
        let fresh = must_get(port, "/", cookie);
        assert_eq!(fresh.status, 200, "{}", fresh.body);
        let other = set_cookie_sid(&fresh);
        assert_ne!(other, sid);
        assert_eq!(fresh.json()["visits"], 1);
    }

    // redis-ping through the same URL.
    let ping = redis_ping(Some(&good_url), &[]);
    assert!(ping.status.success(), "redis-ping: {ping:?}");
    assert_eq!(String::from_utf8_lossy(&ping.stdout), "PONG\n");

    // redis-ping with the variable unset names it, default and custom name.
    let unset = redis_ping(None, &[]);
    assert_eq!(unset.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unset.stderr),
        "error: REDIS_URL is not set\n"
    );
    let custom = redis_ping(
        Some(&good_url),
        &["--redis-url-env", "SESSION_DEMO_NO_SUCH_VAR"],
    );
    assert_eq!(custom.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&custom.stderr),
        "error: SESSION_DEMO_NO_SUCH_VAR is not set\n"
    );

    // A wrong password: not ready, no counter, redis-ping fails; never echoed.
    let wrong_url = redis_url(WRONG_PASSWORD, redis_port);
    let wrong_port = free_port();
    let wrong = app(&wrong_url, wrong_port);
    let not_ready = must_get(wrong_port, "/readyz", None);
    assert_eq!(not_ready.status, 503, "{}", not_ready.body);
    assert!(
        not_ready.body.starts_with("not ready: "),
        "{}",
        not_ready.body
    );
    assert!(
        !not_ready.body.contains(WRONG_PASSWORD),
        "{}",
        not_ready.body
    );
    let no_counter = must_get(wrong_port, "/", None);
    assert_eq!(no_counter.status, 503, "{}", no_counter.body);
    let error = no_counter.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.starts_with("session store unavailable: "), "{error}");
    assert!(!error.contains(WRONG_PASSWORD), "{error}");
    drop(wrong);

    let ping = redis_ping(Some(&wrong_url), &[]);
    assert_eq!(ping.status.code(), Some(1), "{ping:?}");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr),
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains(WRONG_PASSWORD) && !stdout.contains(WRONG_PASSWORD),
        "{stderr}"
    );

    // Redis goes away: not ready, still alive, the counter says why.
    redis.kill();
    wait_until(
        "/readyz turns 503 after Redis stopped",
        Duration::from_secs(10),
        || get(port, "/readyz", None).is_ok_and(|r| r.status == 503),
    );
    let health = must_get(port, "/healthz", None);
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let down = must_get(port, "/", Some(&format!("sid={sid}")));
    assert_eq!(down.status, 503, "{}", down.body);
    let error = down.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.starts_with("session store unavailable: Redis at 127.0.0.1:"),
        "{error}"
    );
    assert!(
        !error.contains(PASSWORD) && !error.contains(ENCODED),
        "{error}"
    );

    // SIGTERM: graceful shutdown, exit 0.
    let term = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .expect("run kill -TERM");
    assert!(term.success());
    let status = serve
        .wait_exit(Duration::from_secs(10))
        .expect("serve exits after SIGTERM");
    assert!(status.success(), "serve exited with {status}");
}
