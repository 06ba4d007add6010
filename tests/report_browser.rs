//! report.html in a real headless Chromium, driven through the DevTools protocol
//! (`common::cdp`): a brush dragged with the mouse along the `lr` axis leaves exactly the
//! trials of the records inside it, in the plot and in the table; hovering a point shows
//! its trial; no console error; no network request; and a 10,000-trial study renders and
//! filters a brush within a second. Without Chromium each test prints SKIP.

mod common;

use common::cdp::{chromium, Browser};
use popsweep::storage::{OpsIn, RunStorage, Storage, TrialRecord};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const SWEEP: &str = "name: brush\nmethod: random\nmetric: {name: val_accuracy, goal: maximize}\n\
    run_cap: 40\nearly_terminate: {type: hyperband, min_iter: 1, eta: 3}\n\
    parameters:\n  lr: {distribution: log_uniform_values, min: 0.003, max: 1.0}\n  \
    width: {values: [16, 32]}\n  dropout: {distribution: uniform, min: 0.0, max: 0.3}\n\
    train: {epochs: 3, batch_size: 64}\nmodel: {depth: 1}\nseed: 5\n";

/// One browser test at a time: the timing test must not share this 2-core machine with a
/// sweep and another browser.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fresh(tag: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("popsweep-browser-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}

fn report(dir: &Path) -> PathBuf {
    common::ok(&common::popsweep(&["report", dir.to_str().unwrap()]));
    dir.join("report.html")
}

fn records(dir: &Path) -> Vec<TrialRecord> {
    let mut s = RunStorage::read(dir).unwrap();
    s.records().unwrap()
}

fn numbers(v: &Value) -> Vec<u64> {
    let mut n: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    n.sort_unstable();
    n
}

/// Every request the page made stayed on disk (its own file, inline data).
fn assert_offline(b: &Browser) {
    let requests = b.requests();
    assert!(!requests.is_empty(), "the network log recorded nothing");
    for url in &requests {
        assert!(
            url.starts_with("file://") || url.starts_with("data:") || url.starts_with("blob:"),
            "a network request: {url}"
        );
    }
}

#[test]
fn brushing_lr_leaves_exactly_the_trials_inside_and_hover_names_the_trial() {
    let Some(_) = chromium() else {
        println!("SKIP: browser test: no chromium installed (CI installs Debian's)");
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let base = fresh("brush");
    std::fs::write(base.join("s.yaml"), SWEEP).unwrap();
    let dir = base.join("run");
    common::run_quietly(&base.join("s.yaml"), &dir);
    // A range test in the run directory becomes the page's lr-finder view.
    common::ok(&common::popsweep(&[
        "lr-find",
        base.join("s.yaml").to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--steps",
        "40",
        "--seeds",
        "2",
    ]));
    let page = report(&dir);
    let trials = records(&dir);
    let mut b = Browser::launch("brush").unwrap();
    b.open(&format!("file://{}", page.display()));
    assert_eq!(b.eval("popsweep.count()"), json!(trials.len()));
    let drawn = "(() => { const s = document.getElementById('lr-finder'); return !s.hidden && !!s.querySelector('canvas'); })()";
    assert_eq!(b.eval(drawn), json!(true), "the range test is drawn");

    // Drag along the lr axis from 30% to 70% of its height, as a user would.
    let axis = b.eval("popsweep.axis('lr')");
    let (x, top, bottom) = (
        axis["x"].as_f64().unwrap(),
        axis["top"].as_f64().unwrap(),
        axis["bottom"].as_f64().unwrap(),
    );
    let (y0, y1) = (top + 0.3 * (bottom - top), top + 0.7 * (bottom - top));
    b.mouse("mousePressed", x, y0, true);
    for k in 1..=5 {
        b.mouse("mouseMoved", x, y0 + (y1 - y0) * k as f64 / 5.0, true);
    }
    b.mouse("mouseReleased", x, y1, false);
    let brush = b.eval("popsweep.brushes().lr");
    let (lo, hi) = (brush[0].as_f64().unwrap(), brush[1].as_f64().unwrap());
    assert!(0.003 <= lo && lo < hi && hi <= 1.0, "brush {lo}..{hi}");
    let mut inside: Vec<u64> = trials
        .iter()
        .filter(|t| t.params["lr"].as_f64().is_some_and(|v| lo <= v && v <= hi))
        .map(|t| t.number as u64)
        .collect();
    inside.sort_unstable();
    assert!(
        !inside.is_empty() && inside.len() < trials.len(),
        "{} of {} inside",
        inside.len(),
        trials.len()
    );
    assert_eq!(
        numbers(&b.eval("popsweep.plotted()")),
        inside,
        "the plot's highlighted lines"
    );
    assert_eq!(
        numbers(&b.eval("popsweep.tableRows()")),
        inside,
        "the table's rows"
    );
    let csv = b.eval("popsweep.csv()");
    assert_eq!(
        csv.as_str().unwrap().lines().count(),
        inside.len() + 1,
        "CSV: a header and a row per trial"
    );

    // A second brush, on width, narrows the selection to both.
    b.eval("popsweep.brush('width', -0.5, 0.5)");
    let both: Vec<u64> = trials
        .iter()
        .filter(|t| inside.contains(&(t.number as u64)) && t.params["width"].as_f64() == Some(16.0))
        .map(|t| t.number as u64)
        .collect();
    assert_eq!(numbers(&b.eval("popsweep.tableRows()")), both);

    // Hovering a point of the history shows that trial's tooltip.
    let best = trials
        .iter()
        .find(|t| t.last_value().is_some() && both.contains(&(t.number as u64)))
        .unwrap();
    b.eval("document.querySelector('#history canvas').scrollIntoView()");
    let p = b.eval(&format!("popsweep.point('history', {})", best.number));
    b.mouse(
        "mouseMoved",
        p["x"].as_f64().unwrap(),
        p["y"].as_f64().unwrap(),
        false,
    );
    let tip = b.eval("(() => { const t = document.getElementById('tip'); return [t.style.display, t.textContent]; })()");
    assert_eq!(tip[0], "block", "the tooltip shows");
    let text = tip[1].as_str().unwrap();
    assert!(
        text.starts_with(&format!("trial {} ", best.number)),
        "{text}"
    );
    assert!(
        text.contains("lr = ") && text.contains("val_accuracy = "),
        "{text}"
    );

    assert!(
        b.console_errors().is_empty(),
        "console errors: {:?}",
        b.console_errors()
    );
    assert_offline(&b);
    let _ = std::fs::remove_dir_all(&base);
}

/// A synthetic study of `n` trials (no training): random configurations, a third of them
/// stopped at each of three rungs, values that depend on the configuration.
fn synthetic_run(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("sweep.yaml"), SWEEP).unwrap();
    let mut storage = RunStorage::create(dir, OpsIn::Memory).unwrap();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for number in 0..n {
        let (lr, dropout, wide) = (
            0.003 * (1000f64 / 3.0).powf(next()),
            0.3 * next(),
            next() < 0.5,
        );
        let quality = 0.9 - (lr.log10() + 1.2).powi(2) * 0.1 - dropout * 0.2;
        let epochs = [1, 3, 9][number % 3];
        let history: Vec<Value> = (1..=epochs)
            .map(|e| {
                let v = quality * (1.0 - 0.5f64.powi(e));
                json!({"epoch": e, "train_loss": 1.0 - v, "train_accuracy": v + 0.01, "val_loss": 1.05 - v, "val_accuracy": v})
            })
            .collect();
        let rungs: Vec<Value> = [1, 3, 9]
            .iter()
            .take_while(|&&e| e <= epochs)
            .enumerate()
            .map(|(k, &e)| json!({"rung": k, "epochs": e, "value": quality * (1.0 - 0.5f64.powi(e))}))
            .collect();
        let record: TrialRecord = serde_json::from_value(json!({
            "number": number,
            "params": {"lr": lr, "dropout": dropout, "width": if wide { 32 } else { 16 }},
            "state": if epochs == 9 { "complete" } else { "pruned" },
            "epochs": epochs, "rungs": rungs, "history": history,
            "param_count": if wide { 2410 } else { 1210 }, "flops_per_sample": 4000,
        }))
        .unwrap();
        storage.record(&record).unwrap();
    }
    storage.sync().unwrap();
}

#[test]
fn ten_thousand_trials_render_and_filter_a_brush_within_a_second() {
    let Some(_) = chromium() else {
        println!("SKIP: browser test: no chromium installed (CI installs Debian's)");
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let base = fresh("10k");
    let dir = base.join("run");
    synthetic_run(&dir, 10_000);
    let page = report(&dir);
    let mut b = Browser::launch("10k").unwrap();
    b.open(&format!("file://{}", page.display()));
    assert_eq!(b.eval("popsweep.count()"), json!(10_000));
    let load = b.eval("popsweep.loadMs").as_f64().unwrap();
    println!(
        "render {}, views {}",
        b.eval("popsweep.renderMs"),
        b.eval("popsweep.timings()")
    );
    let brush = b.eval("popsweep.brush('lr', 0.01, 0.1)").as_f64().unwrap();
    let selected = b.eval("popsweep.selected().length").as_u64().unwrap();
    let expected = records(&dir)
        .iter()
        .filter(|t| {
            t.params["lr"]
                .as_f64()
                .is_some_and(|v| (0.01..=0.1).contains(&v))
        })
        .count() as u64;
    println!("10,000 trials: rendered {load:.0} ms after navigation, brush filtered and redrawn in {brush:.0} ms");
    assert_eq!(selected, expected);
    assert!(load < 1000.0, "render took {load:.0} ms");
    assert!(brush < 1000.0, "brush took {brush:.0} ms");
    assert!(
        b.console_errors().is_empty(),
        "console errors: {:?}",
        b.console_errors()
    );
    assert_offline(&b);
}
