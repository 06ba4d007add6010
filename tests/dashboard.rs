//! `popsweep dashboard`: live in a headless Chromium while a sweep runs (its trial count
//! grows, each new record shown within 2 s, and its final state equals the report's), and
//! hostile requests (traversal, encoded traversal, absolute paths, writes) answered 4xx
//! with the server still up, listening on 127.0.0.1 only.

mod common;

use common::cdp::{chromium, Browser};
use common::served::{dashboard, status};
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// ASHA over 4 slots on digits with wide models: trials finish one by one over seconds.
const LIVE: &str = "name: live\nmethod: random\nmetric: {name: val_accuracy, goal: maximize}\n\
    run_cap: 30\nscheduler: {type: asha, min_budget: 1, eta: 3, population: 4}\n\
    parameters:\n  lr: {distribution: log_uniform_values, min: 0.003, max: 0.3}\n  \
    width: {values: [256, 512]}\ntrain: {epochs: 9, batch_size: 16}\nmodel: {depth: 3}\nseed: 1\n";

fn fresh(tag: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("popsweep-dash-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// The data object embedded in a page.
fn embedded(html: &str) -> Value {
    let start = html.find("id=\"popsweep-data\">").unwrap() + "id=\"popsweep-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn live_dashboard_follows_a_sweep_and_ends_equal_to_the_report() {
    let Some(_) = chromium() else {
        println!("SKIP: dashboard browser test: no chromium installed (CI installs Debian's)");
        return;
    };
    let base = fresh("live");
    std::fs::write(base.join("live.yaml"), LIVE).unwrap();
    let dir = base.join("run");
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args([
            "run",
            base.join("live.yaml").to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ])
        .args(["--quiet", "--no-sanity", "--threads", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("sweep.yaml").exists() {
        assert!(Instant::now() < deadline, "the sweep wrote no sweep.yaml");
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = dashboard(&[dir.to_str().unwrap()]);
    let mut b = Browser::launch("live").unwrap();
    b.open(&server.url);

    // Each record count the file reaches must show on the page within 2 s.
    // (records in the file, when first seen there, how long until the page showed them)
    let mut seen_in_file: Vec<(usize, Instant, Option<Duration>)> = Vec::new();
    let mut page_counts = Vec::new();
    let mut saw_progress = false;
    let mut worst = Duration::ZERO;
    let done = loop {
        let now = Instant::now();
        let in_file = lines(&dir.join("trials.jsonl"));
        if seen_in_file.last().is_none_or(|&(n, _, _)| n < in_file) {
            seen_in_file.push((in_file, now, None));
        }
        let on_page = b.eval("popsweep.count()").as_u64().unwrap() as usize;
        // The sweep's latest progress line, under the live status.
        let status = b.eval("document.getElementById('live').textContent");
        saw_progress |= status.as_str().is_some_and(|s| s.contains("training, "));
        if page_counts.last() != Some(&on_page) {
            page_counts.push(on_page);
        }
        // The oldest file count the page has not reached yet.
        if let Some(&(n, at, _)) = seen_in_file.iter().find(|&&(n, _, _)| n > on_page) {
            let late = now - at;
            assert!(
                late <= Duration::from_secs(2),
                "{n} records on disk for {late:?}, the page shows {on_page}"
            );
        }
        for (n, at, lag) in &mut seen_in_file {
            if *n <= on_page && lag.is_none() {
                *lag = Some(now - *at);
                worst = worst.max(now - *at);
            }
        }
        if let Some(status) = sweep.try_wait().unwrap() {
            assert!(status.success());
            break true;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "the sweep did not end"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(done);
    println!("page trial counts while the sweep ran: {page_counts:?} (worst lag ≤ {worst:?})");
    assert!(
        page_counts.len() >= 3,
        "the count grew only as {page_counts:?}"
    );
    assert!(
        saw_progress,
        "the page never showed the sweep's progress line"
    );

    // Once the summary is written the page shows it; then it equals the report.
    let until = Instant::now() + Duration::from_secs(5);
    while b.eval("popsweep.finished()") != Value::Bool(true) {
        assert!(Instant::now() < until, "the page never saw the summary");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut live = b.eval("popsweep.data()");
    let rows_live = b.eval("popsweep.tableRows()");
    let headline_live = b.eval("document.getElementById('headline').textContent");
    assert!(
        b.console_errors().is_empty(),
        "console errors: {:?}",
        b.console_errors()
    );
    let out = common::popsweep(&["report", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let page = dir.join("report.html");
    let mut offline = embedded(&std::fs::read_to_string(&page).unwrap());
    live["live"] = Value::Null;
    offline["live"] = Value::Null;
    // The browser hands back 1 for the JSON's 1.0: numbers compare as numbers.
    assert_eq!(
        numeric(&live),
        numeric(&offline),
        "the dashboard's final data is the report's"
    );
    b.open(&format!("file://{}", page.display()));
    assert_eq!(b.eval("popsweep.tableRows()"), rows_live);
    assert_eq!(
        b.eval("document.getElementById('headline').textContent"),
        headline_live
    );
}

/// `v` with every number as an f64.
fn numeric(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(numeric).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), numeric(v))).collect()),
        v => v.clone(),
    }
}

#[test]
fn hostile_requests_get_4xx_and_the_server_stays_up_on_loopback_only() {
    let base = fresh("hostile");
    std::fs::write(
        base.join("s.yaml"),
        LIVE.replace("run_cap: 30", "run_cap: 4"),
    )
    .unwrap();
    let dir = base.join("run");
    common::run_quietly(&base.join("s.yaml"), &dir);
    let server = dashboard(&[dir.to_str().unwrap()]);
    let addr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "listens on {addr}");
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status(&addr, &get("/")), 200);
    assert_eq!(status(&addr, &get("/data.json")), 200);
    for path in [
        "/../../../../etc/passwd",
        "/..",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/%252e%252e/etc/passwd",
        "//etc/passwd",
        "/..\\..\\etc\\passwd",
        "/etc/passwd",
        "/sweep.yaml",
        "/trials.jsonl",
        "../sweep.yaml",
        "http://127.0.0.1/../sweep.yaml",
    ] {
        let code = status(&addr, &get(path));
        assert!((400..500).contains(&code), "GET {path}: {code}");
        assert_eq!(status(&addr, &get("/")), 200, "down after GET {path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let req = format!("{method} /data.json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
        let code = status(&addr, &req);
        assert!((400..500).contains(&code), "{method}: {code}");
        assert_eq!(status(&addr, &get("/")), 200, "down after {method}");
    }
    // Nothing answers on this machine's other addresses.
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let outward = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr());
    match outward {
        Ok(a) if !a.ip().is_loopback() && !a.ip().is_unspecified() => {
            let there = std::net::SocketAddr::new(a.ip(), port);
            assert!(
                TcpStream::connect_timeout(&there, Duration::from_secs(2)).is_err(),
                "the dashboard answers on {there}"
            );
        }
        _ => println!("SKIP: no address but loopback here to check the dashboard does not bind"),
    }
}
