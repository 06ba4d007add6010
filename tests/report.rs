//! `popsweep report` end to end: a small sweep, then the text summary and report.html —
//! every figure present, and (where Debian's chromium is installed, as CI does) rendered by
//! a headless browser with no console errors and a screenshot taken.

mod common;

use common::cdp::chromium;
use common::popsweep;
use std::path::{Path, PathBuf};
use std::process::Command;

const SWEEP: &str =
    "name: tiny\nmethod: random\nmetric: {name: val_accuracy, goal: maximize}\nrun_cap: 9\n\
    early_terminate: {type: hyperband, min_iter: 1, eta: 3}\n\
    parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  \
    dropout: {distribution: uniform, min: 0.0, max: 0.3}\n  width: {values: [16, 32]}\n\
    train: {epochs: 9, batch_size: 64}\nmodel: {depth: 1}\nseed: 2\n";

fn run_dir(tag: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("popsweep-report-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let sweep = base.join("tiny.yaml");
    std::fs::write(&sweep, SWEEP).unwrap();
    let dir = base.join("run");
    let out = popsweep(&[
        "run",
        sweep.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
        "--no-sanity",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn headless(browser: &str, extra: &[&str], page: &Path) -> std::process::Output {
    let profile = page.with_file_name("chromium-profile");
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("the browser starts")
}

#[test]
fn report_summarises_and_renders_every_figure() {
    let dir = run_dir("render");
    let out = popsweep(&["report", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("importance (PED-ANOVA"), "{text}");
    assert!(
        text.contains("on test") && text.contains("top trials:"),
        "{text}"
    );
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for id in popsweep::report::html::FIGURES {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "figure {id} missing"
        );
    }
    // Everything inline: no element loads anything, and the page's policy forbids it.
    for load in ["src=\"http", "href=\"http", "<script src", "<link"] {
        assert!(!html.contains(load), "must open offline: {load}");
    }
    assert!(html.contains("default-src 'none'"));

    let json = popsweep(&["report", dir.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["importance"].as_array().unwrap().len(), 3);

    let Some(browser) = chromium() else {
        println!("SKIP: headless rendering: no chromium installed (CI installs Debian's)");
        return;
    };
    let dom = headless(browser, &["--dump-dom"], &page);
    let rendered = String::from_utf8_lossy(&dom.stdout);
    for id in popsweep::report::html::FIGURES {
        assert!(
            rendered.contains(&format!("id=\"{id}\"")),
            "figure {id} not rendered"
        );
    }
    // Every chart drawn (the views are canvases filled by the page's script).
    assert!(
        rendered.matches("<canvas").count() >= 10,
        "{} canvases",
        rendered.matches("<canvas").count()
    );
    let log = String::from_utf8_lossy(&dom.stderr);
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
    let shot = dir.join("report.png");
    let out = headless(
        browser,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=800,3000",
        ],
        &page,
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn report_of_an_unfinished_run_still_renders() {
    let dir = run_dir("partial");
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    // A torn last line, as a crash would leave it.
    let mut lines = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
    lines.push_str("{\"number\": 99, \"par");
    std::fs::write(dir.join("trials.jsonl"), lines).unwrap();
    let out = popsweep(&["report", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no summary.json"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped an unreadable trial line"));
    let missing = popsweep(&["report", "/nonexistent/run"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/run/sweep.yaml"));
}

#[test]
fn nested_cv_report_names_its_outer_folds() {
    let base = std::env::temp_dir().join(format!("popsweep-report-cv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("run");
    let sweep = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/digits-nested-cv.yaml"
    );
    let out = popsweep(&["run", sweep, "--out", dir.to_str().unwrap(), "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = popsweep(&["report", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nested cross-validation over 5 outer folds (3 inner): test accuracy 0."),
        "{text}"
    );
    assert!(!text.contains("null") && !text.contains("NaN"), "{text}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Nested cross-validation over 5 outer folds"));
    assert!(!html.contains("no summary yet"));
    // Each fold's test, once, in the final table (drawn by the page from its data).
    assert!(html.contains("each outer fold tested once"));
}

#[test]
fn an_ask_tell_study_is_reported_too() {
    let study = std::env::temp_dir().join(format!("popsweep-report-study-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&study);
    let at = study.to_str().unwrap();
    let space = r#"{"x": {"distribution": "uniform", "min": -2, "max": 2}, "opt": {"values": ["sgd", "adam"]}}"#;
    for _ in 0..6 {
        let out = popsweep(&["ask", "--study", at, "--space", space, "--seed", "3"]);
        let asked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let x = asked["params"]["x"].as_f64().unwrap();
        let trial = asked["trial"].to_string();
        let step = popsweep(&[
            "tell",
            "--study",
            at,
            "--trial",
            &trial,
            "--intermediate",
            &(x * x + 1.0).to_string(),
            "--step",
            "1",
        ]);
        assert!(step.status.success());
        let told = popsweep(&[
            "tell",
            "--study",
            at,
            "--trial",
            &trial,
            "--value",
            &(x * x).to_string(),
        ]);
        assert!(
            told.status.success(),
            "{}",
            String::from_utf8_lossy(&told.stderr)
        );
    }
    let out = popsweep(&["report", "--study", at]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("6 trials (6 complete") && text.contains("an ask/tell study: best trial"),
        "{text}"
    );
    let html = std::fs::read_to_string(study.join("report.html")).unwrap();
    assert!(html.contains("An ask/tell study: best trial"));
    // Its intermediate value and objective are the trial's curve.
    assert!(
        html.contains("\"scale\":\"cat\",\"values\":[\"sgd\",\"adam\"]"),
        "the study's own space"
    );
    assert!(
        html.contains("\"r\":[[1.0,"),
        "intermediate values as rungs"
    );
}
