//! Every W&B parameter distribution, written as a W&B sweep file writes it, sampled by the
//! random sampler: each sample lies where the distribution's definition puts it (bounds,
//! multiples of q, integer type for an integer q) and the moments match the definition
//! (the mean of ln X for the log-uniform family, mean and deviation for the normal family,
//! the beta's mean and variance) within tolerances sized for 4,000 samples (≥ 4 standard
//! errors, so a correct sampler fails about once in 10⁴ runs, a wrong one reliably).

use popsweep::config::parse_space;
use popsweep::space::ParamValue;
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::Study;
use std::collections::BTreeMap;

const N: usize = 4000;

const SPACE: &str = "
constant: {value: 7}
categorical: {values: [a, b, c]}
weighted: {values: [a, b, c], probabilities: [0.7, 0.0, 0.3]}
int_uniform: {distribution: int_uniform, min: -2, max: 5}
uniform: {distribution: uniform, min: -1, max: 3}
q_uniform: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
q_uniform_int: {distribution: q_uniform, min: 0, max: 256, q: 32}
log_uniform: {distribution: log_uniform, min: -9.2, max: -2.3}
log_uniform_values: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
q_log_uniform: {distribution: q_log_uniform, min: 2, max: 6, q: 4}
q_log_uniform_values: {distribution: q_log_uniform_values, min: 16, max: 512, q: 8}
inv_log_uniform: {distribution: inv_log_uniform, min: 1, max: 5}
inv_log_uniform_values: {distribution: inv_log_uniform_values, min: 0.001, max: 0.5}
normal: {distribution: normal, mu: 2, sigma: 0.5}
q_normal: {distribution: q_normal, mu: 10, sigma: 3, q: 2}
log_normal: {distribution: log_normal, mu: -1, sigma: 0.7}
q_log_normal: {distribution: q_log_normal, mu: 3, sigma: 0.4, q: 1}
beta: {distribution: beta, a: 2, b: 5}
q_beta: {distribution: q_beta, a: 3, b: 3, q: 0.1}
optimizer:
  parameters:
    lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
    kind: {values: [sgd, adam]}
";

fn samples() -> BTreeMap<String, Vec<ParamValue>> {
    let space = parse_space(SPACE, "space.yaml").unwrap();
    let mut study = Study::in_memory(space, SamplerKind::Random, false, 7).unwrap();
    let mut by_name: BTreeMap<String, Vec<ParamValue>> = BTreeMap::new();
    for t in study.ask_batch(N).unwrap() {
        for (k, v) in t.params {
            by_name.entry(k).or_default().push(v);
        }
    }
    by_name
}

fn floats(v: &[ParamValue]) -> Vec<f64> {
    v.iter()
        .map(|x| match x {
            ParamValue::Float(f) => *f,
            other => panic!("expected a float, got {other:?}"),
        })
        .collect()
}

fn ints(v: &[ParamValue]) -> Vec<i64> {
    v.iter()
        .map(|x| match x {
            ParamValue::Int(i) => *i,
            other => panic!("expected an integer, got {other:?}"),
        })
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn sd(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

fn close(name: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{name}: {got} vs {want} (tolerance {tol})"
    );
}

/// Mean of U(lo, hi) and its 4-standard-error tolerance over N samples.
fn uniform_mean(lo: f64, hi: f64) -> (f64, f64) {
    (
        (lo + hi) / 2.0,
        4.0 * (hi - lo) / 12f64.sqrt() / (N as f64).sqrt(),
    )
}

fn multiples(name: &str, x: &[f64], q: f64) {
    for v in x {
        let k = v / q;
        assert!(
            (k - k.round()).abs() < 1e-9,
            "{name}: {v} is not a multiple of {q}"
        );
    }
}

#[test]
fn every_wandb_distribution_samples_its_definition() {
    let s = samples();
    assert_eq!(
        s.len(),
        21,
        "every parameter, the nested ones dotted: {:?}",
        s.keys()
    );

    assert!(s["constant"].iter().all(|v| *v == ParamValue::Int(7)));
    for c in ["a", "b", "c"] {
        let n = s["categorical"]
            .iter()
            .filter(|v| **v == ParamValue::Str(c.into()))
            .count();
        close("categorical share", n as f64 / N as f64, 1.0 / 3.0, 0.03);
    }
    // W&B's probabilities: each value drawn that often, a zero never.
    for (c, p) in [("a", 0.7), ("b", 0.0), ("c", 0.3)] {
        let n = s["weighted"]
            .iter()
            .filter(|v| **v == ParamValue::Str(c.into()))
            .count();
        close("weighted share", n as f64 / N as f64, p, 0.03);
    }
    assert!(!s["weighted"].contains(&ParamValue::Str("b".into())));
    let iu = ints(&s["int_uniform"]);
    assert!(iu.iter().all(|v| (-2..=5).contains(v)));
    assert!((-2..=5).all(|k| iu.contains(&k)), "every integer appears");

    let u = floats(&s["uniform"]);
    assert!(u.iter().all(|v| (-1.0..=3.0).contains(v)));
    let (m, tol) = uniform_mean(-1.0, 3.0);
    close("uniform mean", mean(&u), m, tol);

    let qu = floats(&s["q_uniform"]);
    multiples("q_uniform", &qu, 0.25);
    assert!(qu.iter().all(|v| (0.0..=1.0).contains(v)));
    let qi = ints(&s["q_uniform_int"]);
    assert!(qi.iter().all(|v| v % 32 == 0 && (0..=256).contains(v)));

    // The log-uniform family: ln X uniform between the (natural-log) bounds.
    for (name, lo, hi) in [
        ("log_uniform", -9.2, -2.3),
        ("log_uniform_values", 0.0001f64.ln(), 0.1f64.ln()),
        ("inv_log_uniform_values", 0.001f64.ln(), 0.5f64.ln()),
    ] {
        let ln: Vec<f64> = floats(&s[name]).iter().map(|v| v.ln()).collect();
        assert!(
            ln.iter().all(|v| (lo - 1e-9..=hi + 1e-9).contains(v)),
            "{name} bounds"
        );
        let (m, tol) = uniform_mean(lo, hi);
        close(&format!("{name} mean of ln"), mean(&ln), m, tol);
    }
    // inv_log_uniform: ln(1/X) is uniform on [min, max].
    let inv: Vec<f64> = floats(&s["inv_log_uniform"])
        .iter()
        .map(|v| (1.0 / v).ln())
        .collect();
    assert!(inv.iter().all(|v| (1.0 - 1e-9..=5.0 + 1e-9).contains(v)));
    let (m, tol) = uniform_mean(1.0, 5.0);
    close("inv_log_uniform mean of ln(1/X)", mean(&inv), m, tol);

    // Quantised log-uniforms: integers (q written as an integer), multiples of q, and the
    // rounding moves a value at most q/2 from the log-uniform's range.
    let qlu = ints(&s["q_log_uniform"]);
    assert!(qlu
        .iter()
        .all(|v| v % 4 == 0 && (2f64.exp() - 2.0..=6f64.exp() + 2.0).contains(&(*v as f64))));
    let qluv = ints(&s["q_log_uniform_values"]);
    assert!(qluv.iter().all(|v| v % 8 == 0 && (12..=516).contains(v)));
    let ln: Vec<f64> = qluv.iter().map(|&v| (v as f64).ln()).collect();
    let (m, _) = uniform_mean(16f64.ln(), 512f64.ln());
    close("q_log_uniform_values mean of ln", mean(&ln), m, 0.08);

    let n = floats(&s["normal"]);
    close("normal mean", mean(&n), 2.0, 4.0 * 0.5 / (N as f64).sqrt());
    close(
        "normal sd",
        sd(&n),
        0.5,
        0.5 * 4.0 / (2.0 * N as f64).sqrt(),
    );
    let qn = ints(&s["q_normal"]);
    assert!(qn.iter().all(|v| v % 2 == 0));
    let qn: Vec<f64> = qn.iter().map(|&v| v as f64).collect();
    close(
        "q_normal mean",
        mean(&qn),
        10.0,
        4.0 * 3.0 / (N as f64).sqrt(),
    );
    // Rounding to q adds variance q²/12.
    close("q_normal sd", sd(&qn), (9.0f64 + 4.0 / 12.0).sqrt(), 0.15);

    let ln: Vec<f64> = floats(&s["log_normal"]).iter().map(|v| v.ln()).collect();
    close(
        "log_normal mean of ln",
        mean(&ln),
        -1.0,
        4.0 * 0.7 / (N as f64).sqrt(),
    );
    close(
        "log_normal sd of ln",
        sd(&ln),
        0.7,
        0.7 * 4.0 / (2.0 * N as f64).sqrt(),
    );
    let qln = ints(&s["q_log_normal"]);
    assert!(qln.iter().all(|&v| v >= 0));
    let median = {
        let mut v = qln.clone();
        v.sort();
        v[N / 2] as f64
    };
    close("q_log_normal median", median, 3f64.exp(), 1.5);

    let b = floats(&s["beta"]);
    assert!(b.iter().all(|v| (0.0..=1.0).contains(v)));
    let (a, bb) = (2.0f64, 5.0f64);
    let var = a * bb / ((a + bb).powi(2) * (a + bb + 1.0));
    close(
        "beta mean",
        mean(&b),
        a / (a + bb),
        4.0 * var.sqrt() / (N as f64).sqrt(),
    );
    close("beta sd", sd(&b), var.sqrt(), 0.01);
    let qb = floats(&s["q_beta"]);
    multiples("q_beta", &qb, 0.1);
    close("q_beta mean", mean(&qb), 0.5, 0.02);

    let lr = floats(&s["optimizer.lr"]);
    assert!(lr.iter().all(|v| (0.001..=0.1).contains(v)));
    assert_eq!(s["optimizer.kind"].len(), N);
}

#[test]
fn bad_shapes_name_the_key() {
    for (text, needle) in [
        ("x: {distribution: normal, sigma: 0}", "x.sigma"),
        ("x: {distribution: beta, a: -1}", "x.a"),
        ("x: {distribution: q_normal, q: 0}", "x.q"),
        ("x: {distribution: normal, q: 2}", "x.q"),
        (
            "x: {distribution: q_log_uniform_values, min: 0, max: 4}",
            "x.min",
        ),
        (
            "x: {distribution: q_uniform, min: 0.1, max: 0.2, q: 1}",
            "x.q",
        ),
        ("x: {parameters: {}}", "x.parameters"),
        ("x: {distribution: uniform, min: 0, max: 1, mu: 3}", "x"),
        (
            "x: {values: [1, 2], probabilities: [1.0]}",
            "x.probabilities: 1 probabilities for 2 values",
        ),
        (
            "x: {values: [1, 2], probabilities: [0.5, 0.6]}",
            "x.probabilities: they sum to 1.1",
        ),
        (
            "x: {values: [1, 2], probabilities: [1.5, -0.5]}",
            "x.probabilities: -0.5 is not a probability",
        ),
        (
            "x: {min: 0.0, max: 1.0, probabilities: [1.0]}",
            "takes no `probabilities`",
        ),
    ] {
        let e = parse_space(text, "s.yaml").unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}
