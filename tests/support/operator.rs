//! The operator binary as the tests run it: `stateless-operator run` out of
//! the cluster with a kubeconfig, logging to a file, stopped with SIGTERM
//! (or, for fault tests, killed or paused).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::suffix;

/// SIGTERM must end the process well within a kubelet's default grace (30 s).
pub const STOPS_WITHIN: Duration = Duration::from_secs(15);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The operator binary, out of the cluster with the admin kubeconfig.
/// SIGTERM on [`OperatorBinary::stop`] or drop.
pub struct OperatorBinary {
    child: Option<Child>,
    http: SocketAddr,
    log: PathBuf,
    identity: String,
}

impl OperatorBinary {
    /// `stateless-operator run` with `args` plus the HTTP address, logging to a file.
    pub fn spawn(args: &[String], kubeconfig: &std::path::Path, namespace: &str) -> Self {
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let identity = format!("operator-test-{}", suffix());
        let log = std::env::temp_dir().join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).expect("operator log file");
        let child = Command::new(env!("CARGO_BIN_EXE_stateless-operator"))
            .arg("run")
            .arg(format!("--http-addr={http}"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", &identity)
            .env("POD_NAMESPACE", namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the operator binary: {e}"));
        Self {
            child: Some(child),
            http,
            log,
            identity,
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// GET `path` on the HTTP endpoint: (status, body); (0, "") when unreachable.
    pub async fn get(&self, path: &str) -> (u16, String) {
        super::http_get(self.http, path).await
    }

    /// A watch metric of the controller for `kind`; 0 when not exposed yet.
    pub async fn watch_metric(&self, family: &str, component: &str, kind: &str) -> f64 {
        let prefix = format!("{family}{{component=\"{component}\",kind=\"{kind}\"}} ");
        self.get("/metrics")
            .await
            .1
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    pub async fn restarts(&self, kind: &str) -> f64 {
        self.watch_metric("stateless_watch_restarts_total", "controller", kind)
            .await
    }

    /// Wait until `/readyz` answers `status`; panic with the log after `timeout`.
    pub async fn wait_readyz(&mut self, status: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            assert!(self.running(), "the operator exited:\n{}", self.logs());
            if self.get("/readyz").await.0 == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz did not answer {status} within {timeout:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM; the process must exit successfully within [`STOPS_WITHIN`].
    /// Returns how long it took.
    pub async fn stop(mut self) -> Duration {
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let start = Instant::now();
        terminate(&child);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if start.elapsed() > STOPS_WITHIN {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the operator did not stop within {STOPS_WITHIN:?} of SIGTERM:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "the operator exited with {status} on SIGTERM:\n{}",
            self.logs()
        );
        // Kept only when something failed (the panics above print it anyway).
        let _ = std::fs::remove_file(&self.log);
        start.elapsed()
    }
}

/// SIGTERM to exactly this child, by its id.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

impl Drop for OperatorBinary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl OperatorBinary {
    /// The process id (for signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send `signal` (`KILL`, `STOP`, `CONT`, ...) to this process only.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), pid.to_string()])
                .status();
        }
    }

    /// `kill -9`, and reap it: nothing of it is left.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The lease identity (POD_NAME) it runs as.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A counter or gauge of `/metrics`, summed over its series whose
    /// labels contain `labels` (e.g. `kind="Deployment"`); 0 when absent.
    pub async fn metric_sum(&self, family: &str, labels: &str) -> f64 {
        self.get("/metrics")
            .await
            .1
            .lines()
            .filter(|l| l.starts_with(family) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}
