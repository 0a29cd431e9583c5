//! Throughput of `lint`: parse a generated YAML stream and evaluate the
//! rules. No criterion (keeps the build small); run with
//!
//!     cargo bench --bench lint_throughput
//!
//! Prints objects/second for parse, evaluate and both, and the process's peak
//! resident memory (VmHWM) after each size, for 1k/5k/10k/20k objects spread
//! over ~100 namespaces (sizes run in increasing order, so VmHWM is the peak
//! of the largest run so far).
//!
//! `cargo bench --bench lint_throughput -- --write FILE OBJECTS` writes the
//! same generated stream to FILE instead, so other tools (and the release
//! binary, see `hack/bench-lint.sh`) can be measured on exactly this input.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use stateless_operator::lint::{lint, load_str};
use stateless_operator::rules::Config;

const NAMESPACES: usize = 100;

/// One app = ConfigMap + Deployment + Service + Ingress (4 objects); every
/// few apps carry a violation (ClientIP, sticky cookie, hostPath, file
/// sessions, single replica, upload emptyDir).
fn app(out: &mut String, i: usize) {
    let ns = format!("ns-{}", i % NAMESPACES);
    let name = format!("app-{i}");
    let affinity = if i.is_multiple_of(5) {
        "ClientIP"
    } else {
        "None"
    };
    let sticky = if i.is_multiple_of(7) {
        "\n    nginx.ingress.kubernetes.io/affinity: cookie"
    } else {
        ""
    };
    let driver = if i.is_multiple_of(11) {
        "file"
    } else {
        "redis"
    };
    let replicas = if i.is_multiple_of(13) { 1 } else { 3 };
    let (vol, mount) = if i.is_multiple_of(17) {
        ("hostPath: {path: /srv/data}", "/var/www/uploads")
    } else {
        ("emptyDir: {}", "/tmp")
    };
    let _ = write!(
        out,
        "---
# Source: bench/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {ns}
data:
  SESSION_DRIVER: {driver}
  APP_ENV: production
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}, tier: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}, tier: web}}
    spec:
      containers:
        - name: web
          image: example/{name}:1.0
          envFrom:
            - configMapRef: {{name: {name}}}
          env:
            - name: LOG_LEVEL
              value: info
          ports:
            - name: http
              containerPort: 8080
          securityContext:
            readOnlyRootFilesystem: true
          volumeMounts:
            - name: scratch
              mountPath: {mount}
      volumes:
        - name: scratch
          {vol}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  sessionAffinity: {affinity}
  selector: {{app: {name}}}
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    kubernetes.io/ingress.class: nginx{sticky}
spec:
  rules:
    - host: {name}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {name}
                port: {{name: http}}
"
    );
}

fn corpus(objects: usize) -> String {
    let mut out = String::with_capacity(objects * 400);
    for i in 0..objects / 4 {
        app(&mut out, i);
    }
    out
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// `--write FILE OBJECTS`: the generated stream, for measuring other tools.
fn write_mode() -> Option<Result<(), String>> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--write")?;
    let (Some(file), Some(count)) = (args.get(at + 1), args.get(at + 2)) else {
        return Some(Err("usage: --write FILE OBJECTS".to_string()));
    };
    let objects: usize = match count.parse() {
        Ok(n) => n,
        Err(e) => return Some(Err(format!("OBJECTS `{count}`: {e}"))),
    };
    Some(std::fs::write(file, corpus(objects)).map_err(|e| format!("{file}: {e}")))
}

fn main() {
    match write_mode() {
        Some(Ok(())) => return,
        Some(Err(e)) => {
            eprintln!("lint_throughput: {e}");
            std::process::exit(2);
        }
        None => {}
    }
    let config = Config::default();
    println!(
        "{:>7} {:>9} {:>12} {:>12} {:>12} {:>12} {:>9} {:>10}",
        "objects", "MiB", "parse/s", "eval/s", "total/s", "total ms", "findings", "VmHWM MiB"
    );
    for objects in [1_000usize, 5_000, 10_000, 20_000] {
        let text = corpus(objects);
        // Best of 3 runs to smooth out noise from other processes.
        let mut best: Option<(Duration, Duration, usize, usize)> = None;
        for _ in 0..3 {
            let t0 = Instant::now();
            let loaded = load_str(&text, "bench.yaml");
            let t1 = Instant::now();
            let findings = lint(&loaded, &config);
            let t2 = Instant::now();
            assert!(loaded.errors.is_empty(), "generated corpus must parse");
            let run = (t1 - t0, t2 - t1, loaded.len(), findings.len());
            if best.is_none_or(|b| run.0 + run.1 < b.0 + b.1) {
                best = Some(run);
            }
        }
        let Some((parse, eval, n, findings)) = best else {
            continue;
        };
        let hwm = vm_hwm_kib().map(|k| format!("{:.1}", k as f64 / 1024.0));
        println!(
            "{:>7} {:>9.1} {:>12.0} {:>12.0} {:>12.0} {:>12.1} {:>9} {:>10}",
            n,
            text.len() as f64 / (1024.0 * 1024.0),
            per_sec(n, parse),
            per_sec(n, eval),
            per_sec(n, parse + eval),
            (parse + eval).as_secs_f64() * 1000.0,
            findings,
            hwm.as_deref().unwrap_or("n/a"),
        );
    }
}
