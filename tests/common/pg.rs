//! PostgreSQL for the tests: a fresh database per test on the server that
//! `POPSWEEP_TEST_PG` names (`.ci/run` starts a private cluster with
//! `scripts/pg-cluster.sh` and sets it), or a private cluster of a test's own.

use std::path::PathBuf;
use std::process::Command;

/// The server's admin URL, or `None` after printing why the test skips.
pub fn server() -> Option<String> {
    match std::env::var("POPSWEEP_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "SKIP: no PostgreSQL: POPSWEEP_TEST_PG is not set (`scripts/pg-cluster.sh \
                 start DIR PORT` starts a private server and prints its URL)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (authority, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{authority}/{database}{query}")
}

/// A new, empty database on `admin`'s server (dropped first if a previous run left it).
pub fn fresh_database_on(admin: &str, tag: &str) -> String {
    let name = format!("popsweep_{tag}_{}", std::process::id());
    let mut client = postgres::Client::connect(admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("the test server {admin}: {e}"));
    // Two statements: a multi-statement batch runs as one transaction, which neither
    // statement allows.
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    with_database(admin, &name)
}

/// A new, empty database on the test server, or `None` (SKIP printed).
pub fn fresh_database(tag: &str) -> Option<String> {
    server().map(|admin| fresh_database_on(&admin, tag))
}

/// A private PostgreSQL server of one test's own (one that the test may restart), stopped
/// when dropped.
pub struct Cluster {
    pub dir: PathBuf,
    pub url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster.sh")
}

impl Cluster {
    /// Starts one on a free port, or `None` (SKIP printed) without PostgreSQL's server.
    pub fn start(tag: &str) -> Option<Cluster> {
        Cluster::start_with(tag, "")
    }

    /// One that takes only TLS connections, its certificate signed by `dir/ca.crt`.
    pub fn start_tls(tag: &str) -> Option<Cluster> {
        Cluster::start_with(tag, "tls")
    }

    fn start_with(tag: &str, mode: &str) -> Option<Cluster> {
        server()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("popsweep-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(script())
            .args(["start", dir.to_str().unwrap(), &port.to_string(), mode])
            .output()
            .unwrap();
        if !out.status.success() {
            println!(
                "SKIP: cannot start a private PostgreSQL server: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(Cluster { dir, url })
    }

    pub fn restart(&self) {
        let out = Command::new(script())
            .args(["restart", self.dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
