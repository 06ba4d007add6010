//! The command line end to end: bad input gives one clear line and exit code 2; a small
//! sweep writes its run directory with the promised summary fields.

use std::path::PathBuf;
use std::process::{Command, Output};

fn popsweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popsweep-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Asserts a clean input error: exit 2, one stderr line naming the file and `needle`.
fn assert_input_error(yaml: Option<&str>, name: &str, needle: &str) {
    let path = temp(name);
    if let Some(text) = yaml {
        std::fs::write(&path, text).unwrap();
    }
    let out = popsweep(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        temp(&format!("{name}.run")).to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(path.to_str().unwrap()),
        "{name}: no file in {stderr}"
    );
    assert!(stderr.contains(needle), "{name}: no `{needle}` in {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

/// Runs `popsweep run` on `yaml` (written as `name`.yaml) into a fresh run directory;
/// returns the output and the run directory.
fn run_sweep_file(name: &str, yaml: &str) -> (Output, PathBuf) {
    let path = temp(&format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let out_dir = temp(&format!("{name}.run"));
    let out = popsweep(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    (out, out_dir)
}

/// `summary.json` of a successful run.
fn summary_of(out: &Output, dir: &std::path::Path) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// A run's trial records, one JSON line each, sorted (the order trials finish in is not
/// part of what a resume must reproduce).
fn sorted_records(dir: &std::path::Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(dir.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

const HEAD: &str = "method: random\nmetric:\n  name: val_accuracy\n  goal: maximize\n";

#[test]
fn bad_inputs_give_one_clear_line_and_exit_2() {
    assert_input_error(None, "missing.yaml", "No such file");
    assert_input_error(
        Some("method: random\nmetric: {name: [\n"),
        "malformed.yaml",
        "malformed.yaml:",
    );
    assert_input_error(
        Some(&format!("{HEAD}bogus: 1\n")),
        "unknown.yaml",
        "unknown.yaml:5: bogus: unknown field `bogus`",
    );
    assert_input_error(
        Some(&format!(
            "{HEAD}parameters:\n  lr:\n    distribution: uniform\n    min: 0.5\n    max: 0.1\n"
        )),
        "minmax.yaml",
        "minmax.yaml:8: parameters.lr.min: min 0.5 is greater than max 0.1",
    );
    assert_input_error(
        Some(&format!("{HEAD}parameters:\n  lr:\n    distribution: log_uniform_values\n    min: -1\n    max: 0.1\n")),
        "logmin.yaml",
        "logmin.yaml:8: parameters.lr.min: log_uniform_values is on a log scale and needs min > 0",
    );
}

#[test]
fn small_sweep_writes_trials_and_summary() {
    let path = temp("small.yaml");
    std::fs::write(
        &path,
        format!(
            "{HEAD}name: small\nrun_cap: 6\nearly_terminate: {{type: hyperband, min_iter: 1, eta: 3}}\n\
             parameters:\n  lr: {{distribution: log_uniform_values, min: 0.02, max: 0.2}}\n  \
             width: {{values: [16, 32]}}\ntrain: {{epochs: 3}}\nmodel: {{depth: 1}}\n"
        ),
    )
    .unwrap();
    let out_dir = temp("small.run");
    let out = popsweep(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rung 2/2") && stdout.contains("best trial"),
        "{stdout}"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let best = &summary["best"];
    assert!(best["trial"].is_u64() && best["params"]["lr"].is_f64());
    assert!(best["val"].as_f64().unwrap() > 0.5 && best["test"].as_f64().unwrap() > 0.5);
    // 6 trials at 1 epoch, ⌊6/3⌋ = 2 continue to 3 epochs.
    assert_eq!(summary["trials"]["complete"], 2);
    assert_eq!(summary["trials"]["pruned"], 4);
    assert_eq!(summary["epochs_total"], 6 + 2 * 2);
    assert!(summary["wall_seconds"].as_f64().unwrap() > 0.0);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out_dir.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    for t in &lines {
        assert!(t["number"].is_u64() && t["params"].is_object() && t["rungs"].is_array());
        assert!(["complete", "pruned"].contains(&t["state"].as_str().unwrap()));
    }
    let csv = std::fs::read_to_string(out_dir.join("trials.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "number,state,epochs,value,train_loss,train_accuracy,val_loss,val_accuracy,train_val_gap,grad_norm,param_count,flops_per_sample,lr,width"
    );
    assert_eq!(lines.count(), 6);
    // A second run into the same directory is refused rather than overwriting results.
    let again = popsweep(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn hyperband_scheduler_runs_every_bracket() {
    let (out, dir) = run_sweep_file(
        "hyperband",
        &format!(
            "{HEAD}name: hb\nscheduler: {{type: hyperband, min_budget: 1, eta: 3}}\n\
             parameters:\n  lr: {{distribution: log_uniform_values, min: 0.02, max: 0.2}}\n\
             train: {{epochs: 3}}\nmodel: {{depth: 1, width: 16}}\n"
        ),
    );
    let summary = summary_of(&out, &dir);
    // R = 3, η = 3: bracket s=1 starts 3 trials at 1 epoch and keeps 1 to 3 epochs;
    // bracket s=0 trains 2 trials for 3 epochs.
    let brackets: Vec<(u64, Vec<u64>)> = summary["brackets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let rungs = b["rungs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_u64().unwrap())
                .collect();
            (b["trials"].as_u64().unwrap(), rungs)
        })
        .collect();
    assert_eq!(brackets, vec![(3, vec![1, 3]), (2, vec![3])]);
    assert_eq!(summary["trials"]["complete"], 3);
    assert_eq!(summary["trials"]["pruned"], 2);
    assert_eq!(summary["epochs_total"], 3 + 2 + 2 * 3);
    assert!(summary["best"]["test"].as_f64().unwrap() > 0.5);
}

/// Hyperband with a random sampler runs its brackets in one population; BOHB with
/// `random_fraction: 1` draws the very same configurations but runs its brackets one after
/// another. Every trial must end with the same record either way (a member's training
/// never depends on who shares its population), in fewer ticks of a larger population.
#[test]
fn hyperband_brackets_in_one_population_match_brackets_run_in_order() {
    let body = "run_cap: 17\ntrain: {epochs: 9}\n\
         parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.5}\n  width: {values: [16, 32]}\n";
    let run = |name: &str, scheduler: &str| {
        let (out, dir) = run_sweep_file(
            name,
            &format!("{HEAD}{body}scheduler: {{type: {scheduler}, min_budget: 1, eta: 3}}\n"),
        );
        let summary = summary_of(&out, &dir);
        let mut records: Vec<String> = std::fs::read_to_string(dir.join("trials.jsonl"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        records.sort();
        (summary, records)
    };
    let (shared, shared_records) = run("hb-shared", "hyperband");
    let (in_order, in_order_records) = run("hb-in-order", "bohb, random_fraction: 1.0");
    assert_eq!(shared_records.len(), 9 + 5 + 3);
    assert_eq!(shared_records, in_order_records);
    assert_eq!(shared["best"], in_order["best"]);
    // R = 9, η = 3: brackets of 9, 5 and 3 trials (max 9 in order, 17 together), and
    // 9 ticks together against 9 + 9 + 9 one after another.
    assert_eq!(
        (
            shared["population"].as_u64(),
            in_order["population"].as_u64()
        ),
        (Some(17), Some(9))
    );
    let (u_shared, u_in_order) = (
        shared["utilisation"].as_f64().unwrap(),
        in_order["utilisation"].as_f64().unwrap(),
    );
    let epochs = shared["epochs_total"].as_f64().unwrap();
    assert!(
        (u_shared - epochs / (17.0 * 9.0)).abs() < 1e-9,
        "{u_shared} {epochs}"
    );
    assert!(
        (u_in_order - epochs / (9.0 * 27.0)).abs() < 1e-9,
        "{u_in_order} {epochs}"
    );
}

#[test]
fn csv_data_with_a_named_label_column_trains() {
    // Two Gaussian-ish blobs, label in the middle column, with a header.
    let mut text = String::from("x,class,y\n");
    for i in 0..120 {
        let c = i % 2;
        let jitter = ((i * 37) % 11) as f64 / 11.0 - 0.5;
        text.push_str(&format!(
            "{},{c},{}\n",
            c as f64 * 2.0 + jitter,
            1.0 - c as f64 + 0.3 * jitter
        ));
    }
    std::fs::write(temp("blobs.csv"), text).unwrap();
    let (out, dir) = run_sweep_file(
        "csv",
        &format!(
            "{HEAD}run_cap: 2\nparameters:\n  lr: {{values: [0.05, 0.1]}}\n\
             data: {{format: csv, path: blobs.csv, label: class}}\ntrain: {{epochs: 5, batch_size: 16}}\n\
             model: {{depth: 1, width: 8}}\n"
        ),
    );
    let summary = summary_of(&out, &dir);
    assert!(summary["best"]["test"].as_f64().unwrap() > 0.9, "{summary}");

    let (out, _) = run_sweep_file(
        "csv-bad",
        &format!("{HEAD}data: {{format: csv, path: blobs.csv, label: nope}}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("blobs.csv: line 1: no column named `nope`"),
        "{stderr}"
    );
}

#[test]
fn regression_example_trains_with_mean_squared_error_and_reports_no_accuracy() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/regression/sweep.yaml"
    );
    let dir = temp("regression.run");
    let out = popsweep(&["run", example, "--out", dir.to_str().unwrap()]);
    let summary = summary_of(&out, &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sanity: initial loss") && stdout.contains("overfits"),
        "{stdout}"
    );
    // Friedman #1 has variance about 24 and noise variance 1: a fitted model is far below
    // the first and not below the second.
    let (val, test) = (
        summary["best"]["val"].as_f64().unwrap(),
        summary["best"]["test"].as_f64().unwrap(),
    );
    assert!(val > 0.8 && val < 4.0, "{summary}");
    assert!(test > 0.8 && test < 4.0, "{summary}");
    assert!(summary["best"]["test_accuracy"].is_null(), "{summary}");
    let records = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert!(first["history"][0]["val_accuracy"].is_null(), "{first}");
    assert!(
        first["history"][0]["val_loss"].as_f64().unwrap() > 0.0,
        "{first}"
    );
    // The report reads the records back (accuracy null) and ranks by the loss.
    let report = popsweep(&["report", dir.to_str().unwrap()]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
}

#[test]
fn sanity_preflight_passes_by_default_and_stops_a_run_that_cannot_learn() {
    let ok = popsweep(&["sanity", "--json"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert!((report["initial_loss"].as_f64().unwrap() - 10f64.ln()).abs() < 0.5);

    let (out, dir) = run_sweep_file("cannot-learn", &format!("{HEAD}train: {{lr: 1.0e-7}}\n"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("does NOT overfit") && stdout.contains("learning rate"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-sanity"));
    assert!(
        !dir.join("trials.jsonl").exists(),
        "nothing trained, nothing written"
    );
}

#[test]
fn lr_finder_sets_the_learning_rate_range_before_the_sweep() {
    let yaml = format!(
        "{HEAD}run_cap: 6\nparameters:\n  width: {{values: [16, 32]}}\n\
         train: {{epochs: 2, batch_size: 64}}\nmodel: {{depth: 1}}\nlr_finder: {{enabled: true}}\n"
    );
    let (out, dir) = run_sweep_file("lr-finder", &yaml);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("lr_finder:"))
        .expect("the range test is reported");
    let range: Vec<f64> = line
        .split(['[', ',', ']'])
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    assert_eq!(range.len(), 2, "{line}");
    assert!(
        (range[1] / range[0] - 100.0).abs() < 1e-6,
        "a decade either side"
    );
    let trials = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
    for t in trials.lines() {
        let t: serde_json::Value = serde_json::from_str(t).unwrap();
        let lr = t["params"]["lr"].as_f64().expect("lr is now tuned");
        assert!(
            lr >= range[0] * 0.999 && lr <= range[1] * 1.001,
            "{lr} outside {range:?}"
        );
    }
}

#[test]
fn nested_cv_on_digits_prints_each_outer_fold_and_mean_sd() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/digits-nested-cv.yaml"
    ))
    .unwrap()
    .replace("run_cap: 12", "run_cap: 4")
    .replace("epochs: 15", "epochs: 6");
    let (out, dir) = run_sweep_file("nested-cv", &text);
    let summary = summary_of(&out, &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fold_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("outer fold "))
        .collect();
    assert_eq!(fold_lines.len(), 5, "{stdout}");
    let folds = summary["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 5);
    let rows: u64 = folds.iter().map(|f| f["test_rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 1797, "the outer test folds partition the data");
    let accs: Vec<f64> = folds
        .iter()
        .map(|f| f["test_accuracy"].as_f64().unwrap())
        .collect();
    assert!(accs.iter().all(|&a| a > 0.8 && a <= 1.0), "{accs:?}");
    let mean = accs.iter().sum::<f64>() / 5.0;
    assert!((summary["test_accuracy_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    let line = format!(
        "test accuracy over 5 outer folds: {:.4} ± {:.4}",
        mean,
        summary["test_accuracy_sd"].as_f64().unwrap()
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert_eq!(
        summary["members"],
        4 * 5 * 3,
        "one population of every fold"
    );
    // Every configuration was scored in every outer fold.
    let lines = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4 * 5);
}

/// `final: {top_k}` rebuilds each finalist from its own seed on the training rows, so the
/// best trial's test score equals the one the sweep's own weights give, bit for bit;
/// `retrain: true` trains on train + validation instead and reports every finalist.
#[test]
fn final_stage_rebuilds_exactly_and_retrains_on_train_plus_validation() {
    let base = format!(
        "{HEAD}run_cap: 9\ntrain: {{epochs: 3}}\nearly_terminate: {{type: hyperband, min_iter: 1, eta: 3}}\n\
         parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 0.3}}\n  width: {{values: [32, 64]}}\n"
    );
    let (out, dir) = run_sweep_file("final-none", &base);
    let plain = summary_of(&out, &dir);
    assert!(plain.get("final").is_none());
    let (out, dir) = run_sweep_file("final-top2", &format!("{base}final: {{top_k: 2}}\n"));
    let rebuilt = summary_of(&out, &dir);
    assert_eq!(rebuilt["best"]["trial"], plain["best"]["trial"]);
    assert_eq!(
        rebuilt["best"]["test_loss"], plain["best"]["test_loss"],
        "rebuilt exactly"
    );
    assert_eq!(rebuilt["final"]["finalists"].as_array().unwrap().len(), 2);
    let (out, dir) = run_sweep_file(
        "final-retrain",
        &format!("{base}run_cap: 27\nfinal: {{top_k: 3, retrain: true}}\n")
            .replace("run_cap: 9\n", ""),
    );
    let retrained = summary_of(&out, &dir);
    let finalists = retrained["final"]["finalists"].as_array().unwrap();
    assert_eq!(finalists.len(), 3);
    assert_eq!(retrained["final"]["retrain"], true);
    assert!(finalists
        .iter()
        .all(|f| f["test_accuracy"].as_f64().unwrap() > 0.5));
    assert_eq!(
        retrained["best"]["test_accuracy"],
        finalists[0]["test_accuracy"]
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("on train + validation, each scored once on test"),
        "{stdout}"
    );
    // The same finalists as one model: the same trials, in rank order, scored once.
    let (out, dir) = run_sweep_file(
        "final-ensemble",
        &format!("{base}run_cap: 27\nfinal: {{top_k: 3, retrain: true, ensemble: true}}\n")
            .replace("run_cap: 9\n", ""),
    );
    let ensembled = summary_of(&out, &dir);
    assert_eq!(
        ensembled["final"]["finalists"], retrained["final"]["finalists"],
        "the ensemble changes no finalist"
    );
    let ensemble = &ensembled["final"]["ensemble"];
    let trials: Vec<&serde_json::Value> = finalists.iter().map(|f| &f["trial"]).collect();
    assert_eq!(
        ensemble["trials"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        trials
    );
    let accuracy = ensemble["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.5 && accuracy <= 1.0, "{ensemble}");
    assert!(retrained["final"].get("ensemble").is_none());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("test accuracy {accuracy:.4}")),
        "{stdout}"
    );
}

/// A built-in sweep killed with SIGKILL after its first rung, then `popsweep resume`: the
/// trials it had finished keep their records (none is trained again) and the result equals
/// the uninterrupted run's (the replay is deterministic).
#[test]
fn kill_9_then_resume_of_a_built_in_sweep_reaches_the_same_result() {
    let whole = temp("resume-whole.run");
    let out = popsweep(&[
        "run",
        "--no-sanity",
        "--quiet",
        "--out",
        whole.to_str().unwrap(),
    ]);
    let reference = summary_of(&out, &whole);

    let dir = temp("resume-killed.run");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args([
            "run",
            "--no-sanity",
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = |d: &std::path::Path| {
        std::fs::read_to_string(d.join("trials.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // The first rung of 81 trials prunes 54 and logs them at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lines(&dir).len() < 54 {
        assert!(std::time::Instant::now() < deadline, "no rung finished");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = lines(&dir);
    assert!(before.len() < 81, "the sweep ended before the kill");
    assert!(!dir.join("summary.json").exists());

    let out = popsweep(&["resume", dir.to_str().unwrap(), "--quiet"]);
    let resumed = summary_of(&out, &dir);
    let after = lines(&dir);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "finished trials untouched"
    );
    let numbers: std::collections::BTreeSet<u64> = after
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers.len(), after.len(), "no trial recorded twice");
    assert_eq!(numbers.len(), 81);
    assert_eq!(
        resumed["best"], reference["best"],
        "same result as without the crash"
    );
    assert_eq!(resumed["trials"], reference["trials"]);
}

/// PBT killed with SIGKILL once it has written a checkpoint, then `popsweep resume`: it
/// continues from the checkpoint (weights, optimizer state, PBT's random stream) and ends
/// with the uninterrupted run's records, each written once — among them trials that failed
/// before the checkpoint (finished from their records) and after it (trained again).
#[test]
fn kill_9_then_resume_of_pbt_continues_from_its_checkpoint() {
    let yaml = format!(
        "{HEAD}run_cap: 12\ntrain: {{epochs: 24, batch_size: 64}}\n\
         scheduler: {{type: pbt, interval: 2, quantile: 0.25}}\n\
         parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 40.0}}\n  \
         width: {{values: [16, 32]}}\n"
    );
    let (out, whole) = run_sweep_file("pbt-whole", &yaml);
    let reference = summary_of(&out, &whole);
    assert!(
        reference["trials"]["failed"].as_u64().unwrap()
            + reference["trials"]["diverged"].as_u64().unwrap()
            >= 1,
        "{reference}"
    );

    let dir = temp("pbt-killed.run");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(["run", whole.join("sweep.yaml").to_str().unwrap()])
        .args(["--no-sanity", "--quiet", "--out", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.join("pbt.checkpoint").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint written"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !dir.join("summary.json").exists(),
        "the sweep ended before the kill"
    );

    let out = popsweep(&["resume", dir.to_str().unwrap(), "--quiet"]);
    let resumed = summary_of(&out, &dir);
    assert_eq!(
        sorted_records(&dir),
        sorted_records(&whole),
        "the same records, each once"
    );
    assert_eq!(resumed["best"], reference["best"]);
    assert_eq!(resumed["trials"], reference["trials"]);
    assert_eq!(resumed["epochs_total"], reference["epochs_total"]);
    assert!(!dir.join("pbt.checkpoint").exists());
}

#[test]
fn ctrl_c_stops_a_built_in_sweep_and_says_how_to_resume() {
    let dir = temp("sigint-builtin.run");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args([
            "run",
            "--no-sanity",
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.join("trials.jsonl").exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return; // finished before the signal arrived: nothing to check
    }
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("resume with: popsweep resume {}", dir.display())),
        "{stderr}"
    );
    let out = popsweep(&["resume", dir.to_str().unwrap(), "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ctrl-C stops the slot schedules too, between epochs, and what it leaves resumes to the
/// uninterrupted run's records: ASHA from its records (the trials in flight are trained
/// again), PBT from its checkpoint.
#[test]
fn ctrl_c_stops_asha_and_pbt_and_resume_reaches_the_same_records() {
    let body = "train: {epochs: 240, batch_size: 64}\nparameters:\n  \
                lr: {distribution: log_uniform_values, min: 0.01, max: 0.5}\n  \
                width: {values: [16, 32]}\n";
    for (name, schedule, ready) in [
        (
            "sigint-asha",
            "run_cap: 40\nscheduler: {type: asha, min_budget: 1, eta: 3, population: 4}\n",
            "trials.jsonl",
        ),
        (
            "sigint-pbt",
            "run_cap: 12\nscheduler: {type: pbt, interval: 2}\n",
            "pbt.checkpoint",
        ),
    ] {
        let (out, whole) =
            run_sweep_file(&format!("{name}-whole"), &format!("{HEAD}{schedule}{body}"));
        summary_of(&out, &whole);
        let dir = temp(&format!("{name}.run"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_popsweep"))
            .args(["run", whole.join("sweep.yaml").to_str().unwrap()])
            .args(["--no-sanity", "--quiet", "--out", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::metadata(dir.join(ready)).map_or(true, |m| m.len() == 0) {
            assert!(std::time::Instant::now() < deadline, "{name}: no {ready}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // SAFETY: signalling the child we spawned.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}: {stderr}");
        assert!(
            stderr.contains("resume with: popsweep resume"),
            "{name}: {stderr}"
        );
        let out = popsweep(&["resume", dir.to_str().unwrap(), "--quiet"]);
        summary_of(&out, &dir);
        assert_eq!(
            sorted_records(&dir),
            sorted_records(&whole),
            "{name}: the same records, each once"
        );
    }
}

/// Resume from every kind of crash point: the finished run's `trials.jsonl` cut back to a
/// prefix (what a crash leaves, since records are appended rung by rung) — mid-rung, at a
/// rung boundary, one short of the end — then `popsweep resume`. The learning rates reach
/// values that diverge (failed trials among the records) and the best trial's record may
/// be in the prefix (rebuilt from its seed for the test); every resume must end with the
/// same records and the same result as the uninterrupted run.
#[test]
fn resume_from_any_prefix_of_the_records_reproduces_the_run() {
    assert_resume_from_prefixes_reproduces(
        "resume-prefix",
        "early_terminate: {type: hyperband, min_iter: 1, eta: 3}",
    );
}

/// The same for the slot schedules, where a trial starts whenever a slot frees: each
/// recorded trial holds its slot in the replay as long as it did in the run, so the
/// trials trained again start at the same units of the population's clock.
#[test]
fn resume_of_asha_and_median_stopping_reproduces_the_run() {
    assert_resume_from_prefixes_reproduces(
        "resume-asha",
        "scheduler: {type: asha, min_budget: 1, eta: 3, population: 4}",
    );
    assert_resume_from_prefixes_reproduces(
        "resume-asha-drain",
        "scheduler: {type: asha, min_budget: 1, eta: 3, population: 4, drain: train}",
    );
    assert_resume_from_prefixes_reproduces(
        "resume-median",
        "scheduler: {type: median, n_startup_trials: 3, population: 5}",
    );
    // TPE hears every rung arrival while ASHA runs: a resumed run's replayed trials must
    // tell it the same values at the same ticks, or its asks differ.
    assert_resume_from_prefixes_reproduces(
        "resume-asha-tpe",
        "method: tpe\nscheduler: {type: asha, min_budget: 1, eta: 3, population: 4}",
    );
}

fn assert_resume_from_prefixes_reproduces(name: &str, schedule: &str) {
    let head = match schedule.starts_with("method:") {
        true => HEAD.replace("method: random\n", ""),
        false => HEAD.to_string(),
    };
    let yaml = format!(
        "{head}run_cap: 27\ntrain: {{epochs: 9}}\n{schedule}\n\
         parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 60.0}}\n  width: {{values: [32, 64]}}\n"
    );
    let (out, whole) = run_sweep_file(name, &yaml);
    let reference = summary_of(&out, &whole);
    let records: Vec<serde_json::Value> = std::fs::read_to_string(whole.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        reference["trials"]["failed"].as_u64().unwrap()
            + reference["trials"]["diverged"].as_u64().unwrap()
            >= 1,
        "{reference}"
    );
    let sorted = |v: &[serde_json::Value]| {
        let mut v: Vec<String> = v.iter().map(|r| r.to_string()).collect();
        v.sort();
        v
    };
    let first_rung = records
        .iter()
        .filter(|r| r["epochs"].as_u64() <= Some(1))
        .count();
    for cut in [
        0,
        first_rung / 2,
        first_rung,
        first_rung + 3,
        records.len() - 1,
    ] {
        let dir = temp(&format!("{name}-{cut}.run"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["sweep.yaml", "workdir"] {
            std::fs::copy(whole.join(f), dir.join(f)).unwrap();
        }
        let text = std::fs::read_to_string(whole.join("trials.jsonl")).unwrap();
        let prefix: String = text.lines().take(cut).map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join("trials.jsonl"), prefix).unwrap();
        let out = popsweep(&["resume", dir.to_str().unwrap(), "--quiet"]);
        let resumed = summary_of(&out, &dir);
        assert_eq!(resumed["best"], reference["best"], "cut at {cut}");
        assert_eq!(resumed["trials"], reference["trials"], "cut at {cut}");
        let again: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("trials.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            sorted(&again),
            sorted(&records),
            "cut at {cut}: the same records"
        );
    }
}

/// The default sweep has two complete trials tied on validation accuracy (29 and 36); the
/// sweep breaks the tie by validation loss, and the table of top trials must agree, so its
/// first row is the trial that is then tested on the held-out split.
#[test]
fn the_top_trials_table_starts_with_the_trial_that_is_tested() {
    let out_dir = temp("default.run");
    let out = popsweep(&["run", "--out", out_dir.to_str().unwrap(), "--no-sanity"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with("top trials by"));
    let first_row = lines.nth(2).expect("a table row");
    let in_table = first_row.split_whitespace().next().unwrap();
    let tested = stdout
        .lines()
        .find_map(|l| l.strip_prefix("best trial "))
        .and_then(|l| l.split(':').next())
        .expect("a best trial line");
    assert_eq!(in_table, tested, "{stdout}");
}

/// A study directory that does not exist yet (the first ask creates it).
fn fresh_study(name: &str) -> PathBuf {
    let study = temp(&format!("{name}.study"));
    let _ = std::fs::remove_dir_all(&study);
    study
}

const STUDY_SPACE: &str = r#"{"x": {"distribution": "uniform", "min": 0, "max": 1}}"#;

/// Only a study's first ask defines it; a later ask that names another sampler, seed or
/// direction still asks (with the study's own) and says on stderr what it did not use.
#[test]
fn a_later_ask_keeps_the_study_settings_and_says_which_flags_it_ignored() {
    let study = fresh_study("kept");
    let dir = study.to_str().unwrap();
    let first = popsweep(&[
        "ask",
        "--study",
        dir,
        "--space",
        STUDY_SPACE,
        "--sampler",
        "random",
        "--seed",
        "5",
    ]);
    assert!(
        first.status.success() && first.stderr.is_empty(),
        "{first:?}"
    );
    let same = popsweep(&["ask", "--study", dir, "--sampler", "random", "--seed", "5"]);
    assert!(same.status.success() && same.stderr.is_empty(), "{same:?}");
    let other = popsweep(&[
        "ask",
        "--study",
        dir,
        "--sampler",
        "gp",
        "--direction",
        "maximize",
    ]);
    assert!(other.status.success(), "{other:?}");
    assert!(String::from_utf8_lossy(&other.stdout).starts_with(r#"{"trial":2,"#));
    let notes = String::from_utf8_lossy(&other.stderr);
    assert!(
        notes.contains("keeps `random`") && notes.contains("--sampler `gp` is not used"),
        "{notes}"
    );
    assert!(
        notes.contains("--direction `maximize` is not used"),
        "{notes}"
    );
    assert!(!notes.contains("--seed"), "{notes}");
}

/// A slot schedule starts each trial when a slot frees, at some unit of the population's
/// clock, and each epoch's minibatch order follows that clock: `final` must rebuild a
/// trial from the unit it started at (recorded as `first_unit`), or the test score would
/// belong to a model nobody validated.
#[test]
fn final_stage_rebuilds_an_asha_trial_that_started_late_exactly() {
    let base = format!(
        "{HEAD}run_cap: 9\ntrain: {{epochs: 3}}\nscheduler: {{type: asha, min_budget: 1, eta: 3, population: 2}}\n\
         parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 0.3}}\n  width: {{values: [32, 64]}}\nseed: 1\n"
    );
    let (out, dir) = run_sweep_file("asha-final-none", &base);
    let plain = summary_of(&out, &dir);
    let best = plain["best"]["trial"].as_u64().unwrap();
    let first_unit = std::fs::read_to_string(dir.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|t| t["number"] == best)
        .and_then(|t| t["first_unit"].as_u64())
        .unwrap_or(0);
    assert!(
        first_unit > 0,
        "the case needs a best trial that started late"
    );
    let (out, dir) = run_sweep_file("asha-final-top1", &format!("{base}final: {{top_k: 1}}\n"));
    let rebuilt = summary_of(&out, &dir);
    assert_eq!(rebuilt["best"]["trial"], best);
    assert_eq!(
        rebuilt["best"]["test_loss"], plain["best"]["test_loss"],
        "rebuilt exactly"
    );
}

/// A record the replay of an ASHA sweep cannot reproduce (another first unit, or a trial
/// the sweep never starts) is refused, naming the trial; no summary is written.
#[test]
fn resume_of_asha_refuses_records_the_replay_disagrees_with() {
    let yaml = format!(
        "{HEAD}run_cap: 9\ntrain: {{epochs: 3}}\nscheduler: {{type: asha, min_budget: 1, eta: 3, population: 2}}\n\
         parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 0.3}}\n"
    );
    let (out, whole) = run_sweep_file("resume-asha-tampered", &yaml);
    summary_of(&out, &whole);
    let text = std::fs::read_to_string(whole.join("trials.jsonl")).unwrap();
    let late = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["first_unit"].as_u64().is_some())
        .expect("a trial that started late");
    let number = late["number"].as_u64().unwrap();
    let tampered = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut r = late.clone();
        edit(&mut r);
        r.to_string()
    };
    for (case, line) in [
        (
            "first unit",
            tampered(&|r| r["first_unit"] = (r["first_unit"].as_u64().unwrap() + 1).into()),
        ),
        ("never started", tampered(&|r| r["number"] = 99.into())),
    ] {
        let dir = temp(&format!(
            "resume-asha-tampered-{}.run",
            case.replace(' ', "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["sweep.yaml", "workdir"] {
            std::fs::copy(whole.join(f), dir.join(f)).unwrap();
        }
        std::fs::write(dir.join("trials.jsonl"), format!("{line}\n")).unwrap();
        let out = popsweep(&["resume", dir.to_str().unwrap(), "--quiet"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = if case == "never started" { 99 } else { number };
        assert!(
            !out.status.success()
                && stderr.contains(&format!("trial {named}'s record"))
                && stderr.contains("disagrees with a replay"),
            "{case}: {stderr}"
        );
        assert!(!dir.join("summary.json").exists(), "{case}");
    }
}

/// `metric.target` (W&B's semantics): once a complete trial reaches it, no trial starts;
/// those already training finish. Under ASHA no trial may start after the epoch the first
/// one reached it; with Hyperband's brackets one after another (a model-based method) no
/// further bracket starts.
#[test]
fn metric_target_stops_new_trials_of_built_in_sweeps() {
    let records = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("trials.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let asha =
        "method: random\nmetric: {name: val_accuracy, goal: maximize, target: 0.9}\nrun_cap: 27\n\
                train: {epochs: 3}\nscheduler: {type: asha, min_budget: 1, eta: 3, population: 3}\n\
                parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n";
    let (out, dir) = run_sweep_file("target-asha", asha);
    let summary = summary_of(&out, &dir);
    let by = summary["target_reached_by"]
        .as_u64()
        .expect("the target is easy");
    let trials = records(&dir);
    assert!(trials.len() < 27, "{} trials", trials.len());
    let reacher = trials.iter().find(|t| t["number"] == by).unwrap();
    assert_eq!(reacher["state"], "complete");
    let last = reacher["rungs"].as_array().unwrap().last().unwrap();
    assert!(last["value"].as_f64().unwrap() >= 0.9, "{reacher}");
    let reached_at =
        reacher["first_unit"].as_u64().unwrap_or(0) + reacher["epochs"].as_u64().unwrap();
    for t in &trials {
        assert!(t["first_unit"].as_u64().unwrap_or(0) < reached_at, "{t}");
    }
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(&format!("trial {by} reached the target val_accuracy 0.9")));
    let (out, dir) = run_sweep_file("target-asha-none", &asha.replace(", target: 0.9", ""));
    assert!(summary_of(&out, &dir).get("target_reached_by").is_none());
    assert_eq!(records(&dir).len(), 27);

    let hyperband = "method: tpe\nmetric: {name: val_accuracy, goal: maximize, target: 0.9}\n\
                     train: {epochs: 9}\nscheduler: {type: hyperband, min_budget: 1, eta: 3}\n\
                     parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n";
    let (out, dir) = run_sweep_file("target-hyperband", hyperband);
    let summary = summary_of(&out, &dir);
    assert!(summary["target_reached_by"].is_u64(), "{summary}");
    // Hyperband for R = 9, η = 3 starts 9 + 5 + 3 trials; the first bracket reaches 0.9.
    assert_eq!(records(&dir).len(), 9);
}

/// A value that is not a number (NaN, inf) fails the trial, as in Optuna, and says so.
#[test]
fn tell_of_a_non_finite_value_records_a_failure_and_says_so() {
    let study = fresh_study("nan");
    let dir = study.to_str().unwrap();
    assert!(
        popsweep(&["ask", "--study", dir, "--space", STUDY_SPACE, "--n", "2"])
            .status
            .success()
    );
    let out = popsweep(&["tell", "--study", dir, "--trial", "0", "--value", "nan"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not finite; recorded failed"));
    let quiet = popsweep(&["tell", "--study", dir, "--trial", "1", "--value", "-1.5"]);
    assert!(
        quiet.status.success() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
    let journal = std::fs::read_to_string(study.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(r#"{"op":"tell","trial":0,"state":"failed","crc":"#),
        "{journal}"
    );
    let best = popsweep(&["best", "--study", dir]);
    assert!(String::from_utf8_lossy(&best.stdout).starts_with(r#"{"trial":1,"value":-1.5"#));
}

/// ASHA without `population` on the CPU: two slots per worker thread, said in a line of
/// its own, instead of ⌈run_cap/3⌉; a file (or `--population`) that sizes them is obeyed.
#[test]
fn unsized_slots_on_the_cpu_are_two_per_thread() {
    let base = format!(
        "{HEAD}run_cap: 30\ntrain: {{epochs: 3}}\nparameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 0.3}}\n"
    );
    let run = |name: &str, scheduler: &str, extra: &[&str]| {
        let path = temp(&format!("{name}.yaml"));
        std::fs::write(&path, format!("{base}scheduler: {scheduler}\n")).unwrap();
        let out_dir = temp(&format!("{name}.run"));
        let mut args = vec![
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--no-sanity",
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(extra);
        let out = popsweep(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let asha = "{type: asha, min_budget: 1, eta: 3}";
    let two = run("slots-two-threads", asha, &["--threads", "2"]);
    assert!(two.contains("ASHA in 4 slots"), "{two}");
    assert!(
        two.contains("slots: 4, two per cpu thread (not ⌈run_cap/3⌉ = 10"),
        "{two}"
    );
    let one = run("slots-one-thread", "{type: median}", &["--threads", "1"]);
    assert!(one.contains("median stopping in 2 slots"), "{one}");
    let given = run(
        "slots-given",
        "{type: asha, min_budget: 1, eta: 3, population: 7}",
        &["--threads", "2"],
    );
    assert!(
        given.contains("ASHA in 7 slots") && !given.contains("two per"),
        "{given}"
    );
    let flag = run("slots-flag", asha, &["--threads", "2", "--population", "9"]);
    assert!(
        flag.contains("ASHA in 9 slots") && !flag.contains("two per"),
        "{flag}"
    );
}
