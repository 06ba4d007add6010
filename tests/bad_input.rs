//! The bad-input suite: every case is something a user can get wrong — a broken or
//! mistyped sweep file, impossible bounds, a missing or malformed data file, a program that
//! does not exist, crashes, never prints its metric, prints NaN or hangs. Each must end
//! with exactly one stderr line `error: <where>: <what>`, a non-zero exit code and no
//! panic; where trials ran, every one of them is still recorded afterwards (nothing that
//! reached the journal is lost).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("popsweep-bad-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn popsweep(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_popsweep"));
    c.args(args).env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Asserts the one-line error: exit `code`, `error: ` prefix, every needle present.
fn assert_error(case: &str, out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{case}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{case}: not one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{case}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{case}: no `{n}` in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{case}: {stderr}");
}

const HEAD: &str = "method: random\nmetric: {name: val_accuracy, goal: maximize}\ntrain: {epochs: 1}\nrun_cap: 2\n";

/// Built-in sweeps: (case, file contents, expected substrings). Exit code 2.
fn builtin_cases(dir: &Path) -> Vec<(&'static str, Vec<u8>, Vec<String>)> {
    let csv = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let neg = csv("big_label.csv", "a,b,label\n1,2,0\n3,4,70000\n");
    let ragged = csv("ragged.csv", "a,b,label\n1,2,0\n3,4\n");
    let inf_target = csv("inf_target.csv", "a,y\n1,0.5\n2,inf\n");
    let ragged_free = csv(
        "three_features.csv",
        &(0..40)
            .map(|i| format!("{i},1,2,{}\n", i % 2))
            .collect::<String>(),
    );
    let t = |s: &str| s.as_bytes().to_vec();
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("empty file", t(""), v(&["empty"])),
        ("broken yaml", t("method: random\nmetric: {name: [\n"), v(&["sweep.yaml:"])),
        ("not utf-8", b"method: random\n\xff\xfe\n".to_vec(), v(&["sweep.yaml:2", "UTF-8"])),
        ("wrong type", t(&format!("{HEAD}seed: many\n")), v(&["seed", "invalid type"])),
        ("unknown key", t(&format!("{HEAD}bogus: 1\n")), v(&["bogus", "unknown field"])),
        ("unknown parameter key", t(&format!("{HEAD}parameters:\n  lr: {{min: 0.1, max: 1.0, mean: 3}}\n")), v(&["mean"])),
        ("min above max", t(&format!("{HEAD}parameters:\n  lr:\n    min: 0.5\n    max: 0.1\n")), v(&["sweep.yaml:7", "parameters.lr.min", "greater than max"])),
        ("empty values", t(&format!("{HEAD}parameters:\n  width:\n    values: []\n")), v(&["parameters.width.values", "at least one"])),
        ("log of zero", t(&format!("{HEAD}parameters:\n  lr: {{distribution: log_uniform_values, min: 0, max: 1}}\n")), v(&["parameters.lr.min", "min > 0"])),
        ("unknown distribution", t(&format!("{HEAD}parameters:\n  lr: {{distribution: cauchy, min: 0, max: 1}}\n")), v(&["parameters.lr.distribution", "cauchy"])),
        ("unknown method", t("method: annealing\nmetric: {name: val_loss}\n"), v(&["method", "annealing"])),
        ("missing metric", t("method: random\n"), v(&["metric"])),
        ("unknown metric", t("method: random\nmetric: {name: f1}\n"), v(&["metric.name", "f1"])),
        ("bad goal", t("method: random\nmetric: {name: val_loss, goal: lowest}\n"), v(&["metric.goal", "lowest"])),
        ("grid over a continuum", t("method: grid\nmetric: {name: val_loss}\nparameters:\n  lr: {min: 0.1, max: 1.0}\n"), v(&["method", "lr"])),
        ("bohb with a model-based method", t("method: gp\nmetric: {name: val_loss}\ntrain: {epochs: 9}\nscheduler: {type: bohb, min_budget: 1, eta: 3}\n"), v(&["sweep.yaml:1", "method", "random or sobol, not gp"])),
        ("lr_finder with the optimizer tuned", t("method: random\nmetric: {name: val_loss}\nlr_finder: {enabled: true}\nparameters:\n  optimizer: {values: [sgd, adamw]}\n"), v(&["sweep.yaml:3", "lr_finder", "optimizer"])),
        ("run_cap zero", t("method: random\nmetric: {name: val_loss}\nrun_cap: 0\n"), v(&["run_cap", "at least 1"])),
        ("epoch fraction above one", t("method: random\nmetric: {name: val_loss}\ntrain: {epoch_fraction: 1.5}\n"), v(&["train.epoch_fraction", "(0, 1]"])),
        ("accuracy of a regression", t("method: random\nmetric: {name: val_accuracy}\ndata: {format: csv, path: r.csv, task: regression}\n"), v(&["metric.name", "regression"])),
        ("regression on digits", t("method: random\nmetric: {name: val_loss}\ndata: {task: regression}\n"), v(&["data.task", "csv"])),
        ("unknown task", t("method: random\nmetric: {name: val_loss}\ndata: {format: csv, path: r.csv, task: ranking}\n"), v(&["data.task", "ranking"])),
        ("non-finite regression target", t(&format!("method: random\nmetric: {{name: val_loss}}\ntrain: {{epochs: 1}}\nrun_cap: 2\ndata: {{format: csv, path: {inf_target}, task: regression}}\n")), v(&["inf_target.csv", "line 3", "not a finite number"])),
        ("unknown early_terminate", t(&format!("{HEAD}early_terminate: {{type: envelope}}\n")), v(&["early_terminate.type", "envelope"])),
        ("eta one", t(&format!("{HEAD}early_terminate: {{type: hyperband, min_iter: 1, eta: 1}}\n")), v(&["early_terminate.eta"])),
        ("unknown drain", t(&format!("{HEAD}scheduler: {{type: asha, drain: sideways}}\n")), v(&["scheduler.drain", "sideways", "auto, idle, train"])),
        ("key of another scheduler", t(&format!("{HEAD}scheduler: {{type: median, drain: train}}\n")), v(&["scheduler.drain", "does not apply to scheduler `median`"])),
        ("both schedulers", t(&format!("{HEAD}early_terminate: {{type: hyperband, min_iter: 1}}\nscheduler: {{type: asha}}\n")), v(&["scheduler", "not both"])),
        ("missing data file", t(&format!("{HEAD}data: {{format: csv, path: nowhere.csv}}\n")), v(&["nowhere.csv", "No such file"])),
        ("label out of range", t(&format!("{HEAD}data: {{format: csv, path: {neg}, label: label}}\n")), v(&["big_label.csv", "line 3", "out of range"])),
        ("ragged csv", t(&format!("{HEAD}data: {{format: csv, path: {ragged}}}\n")), v(&["ragged.csv", "line 3"])),
        ("condition on a stranger", t(&format!("{HEAD}parameters:\n  width_2: {{values: [8], condition: {{layers: [2]}}}}\n")), v(&["width_2.condition", "layers"])),
        ("knob outside its range", t(&format!("{HEAD}parameters:\n  lr: {{min: -1.0, max: 0.1}}\n")), v(&["parameters.lr.min", "valid range"])),
        ("degenerate normal", t(&format!("{HEAD}parameters:\n  lr: {{distribution: log_normal, mu: -3, sigma: 0}}\n")), v(&["parameters.lr.sigma"])),
        ("program keys on a built-in sweep", t(&format!("{HEAD}max_retries: 2\n")), v(&["max_retries", "external"])),
        ("model key on a program", t("program: p.py\nmethod: random\nmetric: {name: loss}\nmodel: {depth: 2}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["model", "program"])),
        ("unknown macro", t("program: p.py\ncommand: [python3, \"${program}\", \"${argz}\"]\nmethod: random\nmetric: {name: loss}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["command", "${argz}"])),
        ("empty command", t("command: []\nmethod: random\nmetric: {name: loss}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["command", "empty"])),
        ("pruner on a built-in sweep", t(&format!("{HEAD}pruner: median\n")), v(&["pruner", "external"])),
        ("unknown pruner", t("program: p.py\nmethod: random\nmetric: {name: loss}\npruner: medain\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["pruner", "unknown pruner `medain`"])),
        ("bad pruner setting", t("program: p.py\nmethod: random\nmetric: {name: loss}\npruner: {kind: percentile, percentile: 101}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["pruner", "between 0 and 100"])),
        ("pruner and early_terminate", t("program: p.py\nmethod: random\nmetric: {name: loss}\npruner: median\nearly_terminate: {type: hyperband, min_iter: 1}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["pruner", "early_terminate"])),
        ("population zero", t("program: p.py\nmethod: random\nmetric: {name: loss}\npopulation: 0\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["population", "at least 1"])),
        ("cv with one fold", t(&format!("{HEAD}cv: {{outer: 1, inner: 3}}\n")), v(&["cv.outer", "at least 2"])),
        ("cv with early stopping", t(&format!("{HEAD}cv: {{outer: 3, inner: 2}}\nearly_terminate: {{type: hyperband, min_iter: 1}}\n")), v(&["cv", "early stopping"])),
        ("unknown backend", t(&format!("{HEAD}backend: tpu\n")), v(&["backend", "tpu"])),
        ("cnn on rows that are not images", t(&format!("{HEAD}model: {{type: cnn}}\ndata: {{format: csv, path: {ragged_free}}}\n")), v(&["model", "not a square image; give data.shape: [C, H, W]"])),
        ("shape that does not multiply out", t(&format!("{HEAD}model: {{type: cnn, filters: 4, fc_width: 8}}\ndata: {{shape: [2, 8, 8]}}\n")), v(&["model", "2×8×8 is 128 features", "64"])),
        ("kernel larger than the image", t(&format!("{HEAD}model: {{type: cnn, kernel_size: 9}}\n")), v(&["model", "kernel_size 9 is larger than the 8×8 input of convolution 1"])),
        ("zero filters", t(&format!("{HEAD}model: {{type: cnn, filters: 0}}\n")), v(&["model.filters", "valid range"])),
        ("negative filters", t(&format!("{HEAD}model: {{type: cnn, filters: -4}}\n")), v(&["model.filters"])),
        ("pool_every above layers", t(&format!("{HEAD}model: {{type: cnn, layers: 2, pool_every: 3}}\n")), v(&["model.pool_every", "larger than layers 2"])),
        ("mlp knob in a cnn sweep", t(&format!("{HEAD}model: {{type: cnn}}\nparameters:\n  width: {{values: [8]}}\n")), v(&["parameters.width", "unknown parameter", "CNN"])),
        ("cnn key on an mlp", t(&format!("{HEAD}model: {{filters: 8}}\n")), v(&["model.filters", "cnn"])),
        ("bad image shape", t(&format!("{HEAD}model: {{type: cnn}}\ndata: {{shape: [0, 8, 8]}}\n")), v(&["data.shape", "positive"])),
        ("vit heads dividing no d_model", t(&format!("{HEAD}model: {{type: vit, patch: 2}}\nparameters:\n  heads: {{values: [3, 5]}}\n  d_model: {{values: [16, 32]}}\n")), v(&["parameters.heads", "divides any d_model", "head_dim"])),
        ("vit fixed heads not dividing d_model", t(&format!("{HEAD}model: {{type: vit, patch: 2, heads: 3, d_model: 16}}\n")), v(&["model", "heads 3 does not divide d_model 16"])),
        ("vit patch not dividing the image", t(&format!("{HEAD}model: {{type: vit, patch: 3}}\n")), v(&["model", "patch 3 does not divide the 8×8 image"])),
        ("vit zero heads", t(&format!("{HEAD}model: {{type: vit, heads: 0}}\n")), v(&["model.heads", "valid range"])),
        ("vit negative heads", t(&format!("{HEAD}model: {{type: vit, heads: -2}}\n")), v(&["model.heads"])),
        ("vit on rows that are not images", t(&format!("{HEAD}model: {{type: vit, patch: 1}}\ndata: {{format: csv, path: {ragged_free}}}\n")), v(&["model", "not a square image; give data.shape: [C, H, W]"])),
        ("vit d_model and head_dim both", t(&format!("{HEAD}model: {{type: vit, d_model: 32, head_dim: 8}}\n")), v(&["model.head_dim", "not both"])),
        ("attention dropout on a cnn", t(&HEAD.replace("train: {epochs: 1}", "train: {epochs: 1, attn_dropout: 0.1}\nmodel: {type: cnn}")), v(&["train.attn_dropout", "needs model.type vit"])),
        ("attention dropout out of range", t(&HEAD.replace("train: {epochs: 1}", "train: {epochs: 1, attn_dropout: 1.5}\nmodel: {type: vit, patch: 2}")), v(&["train.attn_dropout", "[0, 1)"])),
        ("spatial dropout on an mlp", t(&format!("{HEAD}model: {{spatial_dropout: true}}\n")), v(&["model.spatial_dropout", "cnn"])),
        ("unknown vit pool", t(&format!("{HEAD}model: {{type: vit, patch: 2, pool: max}}\n")), v(&["model.pool", "expected mean or cls"])),
        ("cnn key in a vit sweep", t(&format!("{HEAD}model: {{type: vit, filters: 8}}\n")), v(&["model.filters", "cnn", "vit"])),
        ("wall budget not positive", t(&format!("{HEAD}budget: {{wall_seconds: -5}}\n")), v(&["budget.wall_seconds", "not a positive number"])),
        ("wall budget under nested cv", t(&format!("{HEAD}budget: {{wall_seconds: 60}}\ncv: {{outer: 3, inner: 2}}\n")), v(&["budget.wall_seconds", "nested cross-validation", "run_cap"])),
        ("budget epochs disagreeing", t(&HEAD.replace("train: {epochs: 1}", "train: {epochs: 1}\nbudget: {epochs: 5}")), v(&["budget.epochs", "disagrees with train.epochs 1"])),
        ("ensemble of one", t(&format!("{HEAD}final: {{top_k: 1, ensemble: true}}\n")), v(&["final.ensemble", "top_k of at least 2"])),
        ("budget on a program", t("program: p.py\nmethod: random\nmetric: {name: loss}\nbudget: {wall_seconds: 5}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["budget", "program"])),
        ("program missing", t("program: missing.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  x: {min: 0.0, max: 1.0}\n"), v(&["program", "missing.py", "does not exist"])),
    ]
}

#[test]
fn bad_sweep_files_give_one_clear_line_and_exit_2() {
    let dir = temp("files");
    let cases = builtin_cases(&dir);
    assert!(cases.len() >= 25);
    for (case, body, needles) in cases {
        let path = dir.join("sweep.yaml");
        std::fs::write(&path, body).unwrap();
        let out_dir = dir.join(format!("run-{}", case.replace(' ', "-")));
        let out = popsweep(
            &[
                "run",
                path.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &[],
        );
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_error(case, &out, 2, &needles);
    }
    let out = popsweep(&["run", dir.join("absent.yaml").to_str().unwrap()], &[]);
    assert_error(
        "missing sweep file",
        &out,
        2,
        &["absent.yaml", "No such file"],
    );
}

/// A program sweep over the echo fixture in `mode`; returns the output and run directory.
fn echo_run(case: &str, mode: &str, extra: &str) -> (Output, PathBuf) {
    let dir = temp(case);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo.py"),
        dir.join("echo.py"),
    )
    .unwrap();
    let path = dir.join("sweep.yaml");
    std::fs::write(
        &path,
        format!(
            "program: echo.py\nmethod: grid\nmetric: {{name: loss, goal: minimize}}\n\
             parameters:\n  x: {{values: [0.2, 0.9, 1.3]}}\n{extra}"
        ),
    )
    .unwrap();
    let out_dir = dir.join("run");
    let out = popsweep(
        &[
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[("ECHO_MODE", mode)],
    );
    (out, out_dir)
}

fn records(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn failing_programs_are_named_and_every_trial_is_kept() {
    for (case, mode, extra, needles) in [
        (
            "never prints",
            "silent",
            "",
            vec!["never printed loss", "stdout.log"],
        ),
        (
            "crashes",
            "crash",
            "max_retries: 1\n",
            vec!["exited with", "stderr"],
        ),
        (
            "hangs",
            "sleep",
            "trial_timeout: 1\npopulation: 3\n",
            vec!["timed out after 1 s"],
        ),
    ] {
        let (out, run_dir) = echo_run(case, mode, extra);
        assert_error(case, &out, 1, &needles);
        let recs = records(&run_dir);
        assert_eq!(recs.len(), 3, "{case}: every trial recorded: {recs:?}");
        assert!(recs
            .iter()
            .all(|r| r["state"] == "failed" && r["error"].is_string()));
        if case == "crashes" {
            assert!(recs.iter().all(|r| r["attempts"] == 2), "{recs:?}");
            assert!(run_dir.join("trials/0/stderr.retry1.log").is_file());
        }
        // The journal told every trial.
        let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
        assert_eq!(journal.matches("\"op\":\"tell\"").count(), 3, "{case}");
    }
}

#[test]
fn a_nan_fails_its_own_trial_and_no_other() {
    let (out, run_dir) = echo_run("nan", "nan", "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&run_dir);
    let state = |x: f64| {
        recs.iter()
            .find(|r| r["params"]["x"] == x)
            .map(|r| (r["state"].as_str().unwrap().to_string(), r["error"].clone()))
            .unwrap()
    };
    assert_eq!(state(0.2).0, "complete");
    let (s, e) = state(0.9);
    assert_eq!(s, "failed");
    assert!(
        e.as_str().unwrap().contains("loss is NaN at iteration 1"),
        "{e}"
    );
    assert_eq!(state(1.3).0, "failed");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["best"]["params"]["x"], 0.2);
}

#[test]
fn non_utf8_output_is_kept_in_the_log_and_ignored() {
    let (out, run_dir) = echo_run("garbage", "garbage", "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&run_dir);
    assert!(recs.iter().all(|r| r["state"] == "complete"));
    assert!(recs[0]["error"].as_str().unwrap().contains("not UTF-8"));
    let log = std::fs::read(run_dir.join("trials/0/stdout.log")).unwrap();
    assert!(log.windows(2).any(|w| w == b"\xff\xfe"), "kept verbatim");
}

#[test]
fn resume_refuses_what_it_cannot_continue_and_touches_nothing() {
    let dir = temp("resume-bad");
    let out = popsweep(&["resume", dir.to_str().unwrap()], &[]);
    assert_error("resume of an empty directory", &out, 2, &["sweep.yaml"]);

    // A run whose sweep file was damaged afterwards: refused, journal untouched.
    let (out, run_dir) = echo_run("resume-damaged", "", "");
    assert!(out.status.success());
    let journal = std::fs::read(run_dir.join("journal.jsonl")).unwrap();
    std::fs::write(run_dir.join("sweep.yaml"), "method: [\n").unwrap();
    let out = popsweep(&["resume", run_dir.to_str().unwrap()], &[]);
    assert_error("damaged sweep.yaml", &out, 2, &["sweep.yaml:"]);
    assert_eq!(
        std::fs::read(run_dir.join("journal.jsonl")).unwrap(),
        journal
    );

    // A PBT checkpoint cut short: named, with what to do, and the records untouched.
    let dir = temp("resume-pbt");
    let sweep = dir.join("pbt.yaml");
    std::fs::write(
        &sweep,
        format!(
            "{HEAD}scheduler: {{type: pbt, interval: 1}}\n\
             parameters:\n  lr: {{min: 0.01, max: 0.1}}\n"
        ),
    )
    .unwrap();
    let run_dir = dir.join("run");
    let out = popsweep(
        &[
            "run",
            sweep.to_str().unwrap(),
            "--out",
            run_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !run_dir.join("pbt.checkpoint").exists(),
        "a finished PBT sweep leaves no checkpoint"
    );
    let trials = std::fs::read(run_dir.join("trials.jsonl")).unwrap();
    std::fs::write(
        run_dir.join("pbt.checkpoint"),
        [200u8, 0, 0, 0, 0, 0, 0, 0, b'{'],
    )
    .unwrap();
    let out = popsweep(&["resume", run_dir.to_str().unwrap()], &[]);
    assert_error(
        "damaged pbt checkpoint",
        &out,
        1,
        &["pbt.checkpoint is damaged", "delete it"],
    );
    assert_eq!(std::fs::read(run_dir.join("trials.jsonl")).unwrap(), trials);
}

/// Every sweep file under examples/ is valid as shipped: a newcomer copies these first.
#[test]
fn every_example_sweep_file_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.push(path.join("sweep.yaml"));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        if let Err(e) = popsweep::config::load(&file) {
            panic!("{}: {e}", file.display());
        }
    }
}
