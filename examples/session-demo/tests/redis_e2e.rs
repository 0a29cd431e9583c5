//! session-demo for real, on 127.0.0.1 only: against a real redis-server
//! (with a password) the `/session` contract, readiness, `redis-ping`, a wrong
//! password and Redis going away; the memory store (no Redis at all); the
//! `load` client against one Redis-backed server (nothing lost) and against a
//! memory-backed one restarted mid-run (every client loses its session); the
//! drain on SIGTERM. Every process started here is killed when the test ends,
//! also when it fails (ProcessGuard).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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

/// `/readyz` answers 200 `ready` and `/healthz` 200 `ok`.
fn assert_ready_and_live(port: u16) {
    let ready = must_get(port, "/readyz", None);
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    let health = must_get(port, "/healthz", None);
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
}

fn redis_url(password: &str, redis_port: u16) -> String {
    format!("redis://:{password}@127.0.0.1:{redis_port}/0")
}

/// Where a `serve` under test keeps its sessions.
#[derive(Clone, Copy)]
enum StoreMode<'a> {
    /// Redis at this URL (REDIS_URL).
    Redis(&'a str),
    /// SESSION_STORE=memory; REDIS_URL is set to garbage, to show it is ignored.
    Memory,
}

/// `session-demo serve` on 127.0.0.1:`port`, as pod `pod`, draining
/// `drain_seconds` on SIGTERM; its log goes to `log` if given. Waits for
/// /healthz.
fn serve(
    store: StoreMode,
    port: u16,
    pod: &str,
    drain_seconds: u64,
    log: Option<&Path>,
) -> ProcessGuard {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--drain-seconds", &drain_seconds.to_string()])
        .env("POD_NAME", pod)
        .env("NO_COLOR", "1")
        .env_remove("REDIS_URL_ENV")
        .env_remove("LISTEN")
        .env_remove("SESSION_STORE")
        .env_remove("DRAIN_SECONDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match store {
        StoreMode::Redis(url) => command.env("REDIS_URL", url),
        StoreMode::Memory => command
            .env("SESSION_STORE", "memory")
            .env("REDIS_URL", "not a redis url"),
    };
    match log {
        Some(path) => command.stderr(File::create(path).expect("create the serve log")),
        None => command.stderr(Stdio::null()),
    };
    let guard = ProcessGuard::spawn("session-demo serve", &mut command);
    wait_until(
        "session-demo answers /healthz",
        Duration::from_secs(15),
        || get(port, "/healthz", None).is_ok_and(|r| r.status == 200),
    );
    guard
}

fn app(redis_url: &str, port: u16) -> ProcessGuard {
    serve(StoreMode::Redis(redis_url), port, "test-pod", 1, None)
}

/// A redis-server on a free loopback port, with `PASSWORD`; waits until it
/// accepts connections.
fn redis_server() -> (ProcessGuard, u16) {
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
    let redis = ProcessGuard::spawn(
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
    (redis, redis_port)
}

/// Checks the `/session` answer: 200 and exactly the fields of the contract,
/// `store` and `served_by` as given; its `visits`.
fn visits(reply: &Reply, store: &str, pod: &str) -> i64 {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["served_by", "store", "visits"], "{body}");
    assert_eq!(body["store"], store, "{body}");
    assert_eq!(body["served_by"], pod, "{body}");
    body["visits"]
        .as_i64()
        .unwrap_or_else(|| panic!("visits is not an integer: {body}"))
}

/// `session-demo load ARGS…`; the process output.
fn load(args: &[&str]) -> Output {
    load_command(args).output().expect("run session-demo load")
}

fn load_command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("load")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The one JSON line `load` prints, checked for the contract's shape: exactly
/// its keys, in order, with every request either an error or an answer.
fn load_summary(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "load: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    assert!(lines[0].starts_with(r#"{"clients":"#), "{stdout:?}");
    let positions: Vec<Option<usize>> = [
        "clients",
        "requests",
        "errors",
        "lost",
        "per_pod",
        "elapsed_ms",
    ]
    .iter()
    .map(|key| lines[0].find(&format!("\"{key}\":")))
    .collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.is_sorted(),
        "the contract's keys, in its order: {stdout:?}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    let keys: Vec<&str> = summary
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "clients",
            "elapsed_ms",
            "errors",
            "lost",
            "per_pod",
            "requests"
        ],
        "{stdout}"
    );
    let answered: u64 = summary["per_pod"]
        .as_object()
        .expect("per_pod is an object")
        .values()
        .map(|n| n.as_u64().expect("per_pod counts are integers"))
        .sum();
    assert_eq!(
        summary["requests"].as_u64(),
        Some(summary["errors"].as_u64().expect("errors") + answered),
        "every request is an error or an answer: {stdout}"
    );
    summary
}

fn sigterm(guard: &ProcessGuard) {
    let term = Command::new("kill")
        .args(["-TERM", &guard.child.id().to_string()])
        .status()
        .expect("run kill -TERM");
    assert!(term.success());
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
    let (mut redis, redis_port) = redis_server();
    let good_url = redis_url(ENCODED, redis_port);
    let port = free_port();
    let mut serve = app(&good_url, port);

    // Ready, liveness.
    assert_ready_and_live(port);

    // A new session, then the same cookie twice (once among other cookies),
    // then at `/`, the same counter.
    let first = must_get(port, "/session", None);
    assert_eq!(visits(&first, "redis", "test-pod"), 1);
    let sid = set_cookie_sid(&first);

    let second = must_get(port, "/session", Some(&format!("sid={sid}")));
    assert_eq!(visits(&second, "redis", "test-pod"), 2);
    assert_eq!(
        second.header("set-cookie"),
        None,
        "a known session gets no new cookie"
    );
    let third = must_get(
        port,
        "/session",
        Some(&format!("theme=dark; sid={sid}; lang=en")),
    );
    assert_eq!(visits(&third, "redis", "test-pod"), 3);
    let fourth = must_get(port, "/", Some(&format!("sid={sid}")));
    assert_eq!(visits(&fourth, "redis", "test-pod"), 4);
    assert_eq!(fourth.header("set-cookie"), None);

    // No cookie, or a malformed one: a new session.
    for cookie in [None, Some("sid=not-a-session-id")] {
        let fresh = must_get(port, "/session", cookie);
        assert_eq!(visits(&fresh, "redis", "test-pod"), 1);
        let other = set_cookie_sid(&fresh);
        assert_ne!(other, sid);
    }
    // A well-formed id the store does not hold (expired, say): it starts
    // again at 1 under the same id, without a new cookie.
    let unknown = format!("sid={}", "0123456789abcdef".repeat(2));
    let restarted = must_get(port, "/session", Some(&unknown));
    assert_eq!(visits(&restarted, "redis", "test-pod"), 1);
    assert_eq!(restarted.header("set-cookie"), None);
    let again = must_get(port, "/session", Some(&unknown));
    assert_eq!(visits(&again, "redis", "test-pod"), 2);

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
    let no_counter = must_get(wrong_port, "/session", None);
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
    let down = must_get(port, "/session", Some(&format!("sid={sid}")));
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

    // SIGTERM: graceful shutdown after its 1 s drain, exit 0.
    sigterm(&serve);
    let status = serve
        .wait_exit(Duration::from_secs(11))
        .expect("serve exits after SIGTERM");
    assert!(status.success(), "serve exited with {status}");
}

#[test]
fn sessions_in_memory_need_no_redis() {
    let port = free_port();
    let _serve = serve(StoreMode::Memory, port, "mem-pod", 1, None);
    // Ready without any Redis (REDIS_URL is garbage, and ignored).
    assert_ready_and_live(port);

    let first = must_get(port, "/session", None);
    assert_eq!(visits(&first, "memory", "mem-pod"), 1);
    let sid = set_cookie_sid(&first);
    for n in 2..=3 {
        let next = must_get(port, "/session", Some(&format!("sid={sid}")));
        assert_eq!(visits(&next, "memory", "mem-pod"), n);
        assert_eq!(next.header("set-cookie"), None);
    }
    let root = must_get(port, "/", Some(&format!("sid={sid}")));
    assert_eq!(visits(&root, "memory", "mem-pod"), 4);

    // A session this process does not hold (another replica's, or from
    // before a restart): 1 again, same id, no new cookie.
    let elsewhere = format!("sid={}", "fedcba9876543210".repeat(2));
    let lost = must_get(port, "/session", Some(&elsewhere));
    assert_eq!(visits(&lost, "memory", "mem-pod"), 1);
    assert_eq!(lost.header("set-cookie"), None);
    let other = must_get(port, "/session", None);
    assert_eq!(visits(&other, "memory", "mem-pod"), 1);
    assert_ne!(set_cookie_sid(&other), sid);

    // A heavier page: ?work_ms spends CPU first (what the HPA test loads
    // the pods with), then counts as usual; a bad value is refused.
    let started = std::time::Instant::now();
    let worked = must_get(port, "/session?work_ms=60", Some(&format!("sid={sid}")));
    assert_eq!(visits(&worked, "memory", "mem-pod"), 5);
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "work_ms spends its time"
    );
    let bad = must_get(port, "/session?work_ms=lots", Some(&format!("sid={sid}")));
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn load_against_one_redis_backed_pod_loses_nothing() {
    let (_redis, redis_port) = redis_server();
    let port = free_port();
    let url = redis_url(ENCODED, redis_port);
    let _serve = serve(StoreMode::Redis(&url), port, "redis-pod", 1, None);
    let target = format!("http://127.0.0.1:{port}/session");

    // Bounded by the request budget: exactly that many, long before 30 s.
    let output = load(&[
        "--url",
        &target,
        "--clients",
        "4",
        "--duration",
        "30",
        "--max-requests",
        "400",
    ]);
    let summary = load_summary(&output);
    assert_eq!(summary["clients"], 4, "{summary}");
    assert_eq!(summary["requests"], 400, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(
        summary["per_pod"],
        serde_json::json!({"redis-pod": 400}),
        "{summary}"
    );
    assert!(
        summary["elapsed_ms"].as_u64().is_some_and(|ms| ms < 30_000),
        "{summary}"
    );

    // Bounded by the duration: stops after about 2 s with budget to spare.
    let output = load(&[
        "--url",
        &target,
        "--clients",
        "2",
        "--duration",
        "2",
        "--max-requests",
        "1000000",
        "--interval-ms",
        "20",
    ]);
    let summary = load_summary(&output);
    let requests = summary["requests"].as_u64().expect("requests");
    assert!(requests > 0 && requests < 1_000_000, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(
        summary["per_pod"].as_object().map(|p| p.len()),
        Some(1),
        "{summary}"
    );
    let elapsed = summary["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!((2_000..2_000 + 10_000).contains(&elapsed), "{summary}");
}

#[test]
fn load_counts_the_sessions_a_memory_backed_restart_loses() {
    let port = free_port();
    let mut before = serve(StoreMode::Memory, port, "mem-before", 0, None);
    let target = format!("http://127.0.0.1:{port}/session");
    // Bounded (6 s), so it ends by itself even if this test fails early.
    let run = load_command(&[
        "--url",
        &target,
        "--clients",
        "4",
        "--duration",
        "6",
        "--max-requests",
        "1000000",
        "--interval-ms",
        "20",
        "--timeout-ms",
        "1000",
    ])
    .spawn()
    .expect("start session-demo load");
    sleep(Duration::from_secs(2));
    // The pod dies with its sessions; a new one comes up at the same address.
    before.kill();
    sleep(Duration::from_millis(500));
    let _after = serve(StoreMode::Memory, port, "mem-after", 0, None);
    let output = run.wait_with_output().expect("wait for session-demo load");
    let summary = load_summary(&output);
    assert_eq!(summary["clients"], 4, "{summary}");
    // Each client had a session before and finds it gone after: one loss each.
    assert_eq!(summary["lost"], 4, "{summary}");
    assert!(summary["errors"].as_u64().is_some(), "{summary}");
    let per_pod = summary["per_pod"].as_object().expect("per_pod");
    assert!(
        per_pod.get("mem-before").and_then(|n| n.as_u64()) > Some(0)
            && per_pod.get("mem-after").and_then(|n| n.as_u64()) > Some(0)
            && per_pod.len() == 2,
        "{summary}"
    );
}

#[test]
fn sigterm_drains_then_stops() {
    let port = free_port();
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("drain-{port}.log"));
    let drain = Duration::from_secs(3);
    let mut serve = serve(
        StoreMode::Memory,
        port,
        "drain-pod",
        drain.as_secs(),
        Some(&log),
    );
    let first = must_get(port, "/session", None);
    let sid = set_cookie_sid(&first);
    assert_eq!(must_get(port, "/readyz", None).status, 200);

    sigterm(&serve);
    let signalled = Instant::now();
    // Unready at once (the first answer after the signal is handled)...
    wait_until(
        "/readyz answers 503 after SIGTERM",
        Duration::from_secs(1),
        || get(port, "/readyz", None).is_ok_and(|r| r.status == 503 && r.body == "draining"),
    );
    // ...while every route still answers through the drain, sessions and all.
    let mut visits_seen = 1;
    while signalled.elapsed() < drain - Duration::from_millis(1500) {
        let reply = must_get(port, "/session", Some(&format!("sid={sid}")));
        visits_seen += 1;
        assert_eq!(visits(&reply, "memory", "drain-pod"), visits_seen);
        assert_eq!(
            reply.header("connection"),
            Some("close"),
            "{:?}",
            reply.headers
        );
        let root = must_get(port, "/", Some(&format!("sid={sid}")));
        visits_seen += 1;
        assert_eq!(visits(&root, "memory", "drain-pod"), visits_seen);
        let health = must_get(port, "/healthz", None);
        assert_eq!((health.status, health.body.as_str()), (200, "ok"));
        assert_eq!(must_get(port, "/readyz", None).status, 503);
        sleep(Duration::from_millis(100));
    }
    assert!(visits_seen > 2, "answered during the drain");
    let status = serve
        .wait_exit(drain + Duration::from_secs(10))
        .expect("serve exits within the drain + 10 s");
    assert!(status.success(), "serve exited with {status}");
    assert!(
        signalled.elapsed() >= drain,
        "serve stopped before its drain was over ({:?})",
        signalled.elapsed()
    );
    assert!(
        get(port, "/healthz", None).is_err(),
        "nothing listens any more"
    );
    let log = std::fs::read_to_string(&log).expect("read the serve log");
    let phases = [
        "session-demo started",
        "draining: /readyz answers 503, still serving every request",
        "drain over: closing the listener, finishing in-flight requests",
        "session-demo stopped",
    ];
    let mut at = 0;
    for phase in phases {
        let found = log[at..]
            .find(phase)
            .unwrap_or_else(|| panic!("{phase:?} missing, or out of order, in the log:\n{log}"));
        at += found + phase.len();
    }
}

#[test]
fn load_refuses_unbounded_or_bad_arguments() {
    let url = "http://127.0.0.1:9/session";
    for (args, message) in [
        (
            vec!["--url", url, "--clients", "1", "--duration", "5"],
            "the following required arguments were not provided",
        ),
        (
            vec!["--url", url, "--clients", "1", "--max-requests", "5"],
            "the following required arguments were not provided",
        ),
        (
            vec![
                "--url",
                url,
                "--clients",
                "1",
                "--duration",
                "0",
                "--max-requests",
                "5",
            ],
            "0 is not in 1..=600",
        ),
        (
            vec![
                "--url",
                url,
                "--clients",
                "1",
                "--duration",
                "601",
                "--max-requests",
                "5",
            ],
            "601 is not in 1..=600",
        ),
        (
            vec![
                "--url",
                url,
                "--clients",
                "1",
                "--duration",
                "5",
                "--max-requests",
                "0",
            ],
            "0 is not in 1..=1000000",
        ),
        (
            vec![
                "--url",
                url,
                "--clients",
                "1",
                "--duration",
                "5",
                "--max-requests",
                "1000001",
            ],
            "1000001 is not in 1..=1000000",
        ),
        (
            vec![
                "--url",
                url,
                "--clients",
                "0",
                "--duration",
                "5",
                "--max-requests",
                "5",
            ],
            "0 is not in 1..=1000",
        ),
        (
            vec![
                "--url",
                "https://127.0.0.1/session",
                "--clients",
                "1",
                "--duration",
                "5",
                "--max-requests",
                "5",
            ],
            "only http:// URLs are supported, not https://",
        ),
        (
            vec![
                "--url",
                "127.0.0.1:8080",
                "--clients",
                "1",
                "--duration",
                "5",
                "--max-requests",
                "5",
            ],
            "\"127.0.0.1:8080\" is not an http:// URL; expected http://HOST[:PORT]/PATH",
        ),
    ] {
        let output = load(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // Nothing listens there: every request is an error, still exit 0 with
    // the line (errors are data).
    let port = free_port();
    let output = load(&[
        "--url",
        &format!("http://127.0.0.1:{port}/session"),
        "--clients",
        "2",
        "--duration",
        "5",
        "--max-requests",
        "10",
    ]);
    let summary = load_summary(&output);
    assert_eq!(summary["requests"], 10, "{summary}");
    assert_eq!(summary["errors"], 10, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["per_pod"], serde_json::json!({}), "{summary}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("connect: 10"),
        "{output:?}"
    );
}
