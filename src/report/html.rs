//! `report.html`: one self-contained page (inline SVG and CSS, no script, no network) with
//! the optimisation history, parallel coordinates, importance, learning curves with prune
//! points, the train−validation gap with the overfitting flags, the learning-rate range test
//! when the run directory holds one, the top trials and the final test scores.

use super::diagnostics::overfitting;
use super::importance::importance;
use super::plot::{Chart, Series};
use super::run::RunData;
use crate::population::MetricName;
use crate::space::transform::to_unit;
use crate::storage::{TrialRecord, TrialState};
use std::fmt::Write as _;

/// The `id` of every figure the page holds (the headless-browser test checks them).
pub const FIGURES: [&str; 6] = ["history", "parallel", "importance", "curves", "gap", "top"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render(run: &RunData) -> String {
    let sweep = &run.sweep;
    let metric = &sweep.metric.name;
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>popsweep: {0}</title>\
         <style>body{{font-family:sans-serif;max-width:780px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}\
         section{{margin:2em 0}}.bar{{fill:#1f77b4}}</style></head><body>\n<h1>Sweep <code>{0}</code></h1>\n",
        esc(&sweep.name)
    );
    headline(&mut page, run);
    figure(
        &mut page,
        "history",
        "Optimisation history",
        &history_chart(run),
    );
    figure(
        &mut page,
        "parallel",
        "Parallel coordinates",
        &parallel(run),
    );
    figure(
        &mut page,
        "importance",
        "Hyperparameter importance (PED-ANOVA; Spearman: + means higher does better)",
        &importance_bars(run),
    );
    if run.trials.iter().any(|t| t.param_count > 0) {
        figure(
            &mut page,
            "size",
            "The metric against model size",
            &size_chart(run),
        );
    }
    figure(
        &mut page,
        "curves",
        "Learning curves (dots: where trials were promoted, then where they were pruned)",
        &curves_chart(run, metric),
    );
    let ranked = run.ranked();
    figure(
        &mut page,
        "gap",
        "Regularisation: the train−validation gap",
        &gap_section(run, &ranked),
    );
    // The range test, when `popsweep lr-find --out` wrote one into this directory.
    if let Ok(svg) = std::fs::read_to_string(run.dir.join("lr_find.svg")) {
        figure(&mut page, "lr-finder", "Learning-rate range test", &svg);
    }
    figure(&mut page, "top", "Top trials", &top_table(run, &ranked));
    page.push_str("</body></html>\n");
    page
}

/// A number of `summary.json` at `path`, when the run got that far.
fn summary_number(run: &RunData, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(run.summary.as_ref()?, |v, k| v.get(*k))
        .and_then(|v| v.as_f64())
}

/// The headline: the best trial, validation next to test.
fn headline(page: &mut String, run: &RunData) {
    let num = |path: &[&str]| summary_number(run, path);
    let (metric, maximize) = (run.sweep.metric.name.as_str(), run.sweep.metric.maximize);
    let _ = writeln!(
        page,
        "<p>{} trials; metric <b>{}</b> ({}). {}</p>",
        run.trials.len(),
        esc(metric),
        if maximize {
            "higher is better"
        } else {
            "lower is better"
        },
        match (
            num(&["best", "trial"]),
            num(&["best", "val"]),
            num(&["best", "test"])
        ) {
            (Some(t), Some(v), Some(x)) => format!(
                "Best trial {t}: {v:.4} on validation, <b>{x:.4} on the held-out test split</b>; \
                 {} epochs trained in all, utilisation {:.2}.",
                num(&["epochs_total"]).unwrap_or(f64::NAN),
                num(&["utilisation"]).unwrap_or(f64::NAN)
            ),
            _ => "The run has no summary yet (stopped early?): no test score.".into(),
        }
    );
}

/// Each trial's value at its last rung, and the best complete one so far.
fn history_chart(run: &RunData) -> String {
    let (metric, maximize) = (run.sweep.metric.name.as_str(), run.sweep.metric.maximize);
    let values: Vec<(f64, f64)> = run
        .trials
        .iter()
        .filter_map(|t| Some((t.number as f64, t.last_value()?)))
        .collect();
    let mut best = Vec::new();
    let mut so_far: Option<f64> = None;
    for t in run
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
    {
        if let Some(v) = t.last_value() {
            so_far = Some(so_far.map_or(v, |b| if maximize { b.max(v) } else { b.min(v) }));
            best.push((t.number as f64, so_far.unwrap()));
        }
    }
    Chart {
        title: "value at each trial's last rung; line: best complete so far",
        x_label: "trial",
        y_label: metric,
        x_log: false,
        y_range: None,
        markers: Vec::new(),
        legend: true,
    }
    .svg(&[
        Series {
            label: "trials".into(),
            points: values,
            dots: true,
        },
        Series {
            label: "best so far".into(),
            points: best,
            dots: false,
        },
    ])
}

/// Each trial's value at its last rung against its parameter count (log scale), complete
/// trials apart from stopped ones: whether the larger models earn their size.
fn size_chart(run: &RunData) -> String {
    let points = |complete: bool| -> Vec<(f64, f64)> {
        run.trials
            .iter()
            .filter(|t| t.param_count > 0 && (t.state == TrialState::Complete) == complete)
            .filter_map(|t| Some((t.param_count as f64, t.last_value()?)))
            .collect()
    };
    Chart {
        title: "value at each trial's last rung against its parameters",
        x_label: "parameters",
        y_label: run.sweep.metric.name.as_str(),
        x_log: true,
        y_range: None,
        markers: Vec::new(),
        legend: true,
    }
    .svg(&[
        Series {
            label: "complete".into(),
            points: points(true),
            dots: true,
        },
        Series {
            label: "stopped early".into(),
            points: points(false),
            dots: true,
        },
    ])
}

/// PED-ANOVA importance per parameter, as bars, with Spearman's sign.
fn importance_bars(run: &RunData) -> String {
    let imp = importance(
        &run.sweep.space,
        &run.observations(),
        run.sweep.metric.maximize,
    );
    let mut bars =
        String::from("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"");
    let _ = write!(bars, "{}\" font-size=\"12\">", 24 * imp.len() + 10);
    for (i, m) in imp.iter().enumerate() {
        let y = 24 * i + 5;
        let _ = write!(
            bars,
            "<text x=\"150\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"160\" y=\"{y}\" width=\"{:.1}\" height=\"16\"/>\
             <text x=\"{:.1}\" y=\"{}\">{:.2} (Spearman {:+.2})</text>",
            y + 13,
            esc(&m.param),
            400.0 * m.ped_anova,
            166.0 + 400.0 * m.ped_anova,
            y + 13,
            m.ped_anova,
            m.spearman
        );
    }
    bars.push_str("</svg>");
    bars
}

/// Every trial's learning curve, with the points where trials were promoted and pruned.
fn curves_chart(run: &RunData, metric: &MetricName) -> String {
    let curves: Vec<Series> = run
        .trials
        .iter()
        .map(|t| Series {
            label: format!("trial {}", t.number),
            points: t
                .history
                .iter()
                .filter_map(|h| Some((h.epoch as f64, h.get(metric)?)))
                .collect(),
            dots: false,
        })
        .chain(std::iter::once(Series {
            // Every rung a trial passed (all its rungs but the last) promoted it.
            label: "promoted here".into(),
            points: run
                .trials
                .iter()
                .flat_map(|t| {
                    let passed = t.rungs.len().saturating_sub(1);
                    t.rungs[..passed].iter().map(|r| (r.epochs as f64, r.value))
                })
                .collect(),
            dots: true,
        }))
        .chain(std::iter::once(Series {
            label: "pruned here".into(),
            points: run
                .trials
                .iter()
                .filter(|t| t.state == TrialState::Pruned)
                .filter_map(|t| {
                    let h = t.history.last()?;
                    Some((h.epoch as f64, h.get(metric)?))
                })
                .collect(),
            dots: true,
        }))
        .collect();
    Chart {
        title: metric.as_str(),
        x_label: "epoch",
        y_label: metric.as_str(),
        x_log: false,
        y_range: None,
        markers: Vec::new(),
        legend: false,
    }
    .svg(&curves)
}

/// The train−validation gap of the top trials, and the overfitting flags of all.
fn gap_section(run: &RunData, ranked: &[&TrialRecord]) -> String {
    let gaps: Vec<Series> = ranked
        .iter()
        .take(5)
        .map(|t| Series {
            label: format!("trial {}", t.number),
            points: t
                .history
                .iter()
                .map(|h| (h.epoch as f64, h.gap()))
                .collect(),
            dots: false,
        })
        .collect();
    let mut gap_html = Chart {
        title: "train accuracy − validation accuracy, top 5 trials",
        x_label: "epoch",
        y_label: "gap",
        x_log: false,
        y_range: None,
        markers: Vec::new(),
        legend: true,
    }
    .svg(&gaps);
    let flags = overfitting(&run.trials);
    if flags.is_empty() {
        gap_html.push_str("<p>No trial overfits (an accuracy gap above 0.03 with a rising validation loss, or above 0.10; for regression a loss gap above 0.3, or 0.5).</p>");
    } else {
        gap_html.push_str("<table><tr><th>trial</th><th>gap</th><th>val loss above its minimum</th><th>best epoch</th><th>try</th></tr>");
        for f in flags.iter().take(10) {
            let _ = write!(
                gap_html,
                "<tr><td>{}</td><td>{:.3}</td><td>{:+.0}%</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                f.trial,
                f.gap,
                100.0 * f.val_loss_rise,
                f.best_epoch,
                esc(&f.advice)
            );
        }
        let _ = write!(
            gap_html,
            "</table><p>{} trial(s) flagged as overfitting.</p>",
            flags.len()
        );
    }
    gap_html
}

/// The ten best trials with their parameters, and the best one's test scores.
fn top_table(run: &RunData, ranked: &[&TrialRecord]) -> String {
    let (sweep, metric) = (&run.sweep, run.sweep.metric.name.as_str());
    let names: Vec<&str> = sweep.space.params.iter().map(|p| p.name.as_str()).collect();
    let mut table = String::from("<table><tr><th>trial</th><th>state</th><th>epochs</th>");
    let _ = write!(table, "<th>{}</th>", esc(metric));
    for n in &names {
        let _ = write!(table, "<th>{}</th>", esc(n));
    }
    table.push_str("</tr>");
    for t in ranked.iter().take(10) {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td>",
            t.number,
            esc(t.state.name()),
            t.epochs,
            t.last_value().unwrap_or(f64::NAN)
        );
        for n in &names {
            let v = t.params.get(*n).map_or(String::new(), |v| v.to_string());
            let _ = write!(table, "<td>{}</td>", esc(&v));
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    if let (Some(a), Some(l)) = (
        summary_number(run, &["best", "test_accuracy"]),
        summary_number(run, &["best", "test_loss"]),
    ) {
        let _ = write!(
            table,
            "<p>Final test scores of the best trial, evaluated once: accuracy {a:.4}, loss {l:.4}.</p>"
        );
    }
    table
}

fn figure(page: &mut String, id: &str, title: &str, body: &str) {
    let _ = writeln!(
        page,
        "<section id=\"{id}\"><h2>{}</h2>\n{body}\n</section>",
        esc(title)
    );
}

/// Parallel coordinates: one axis per parameter (its unit scale, log where the space is
/// log) and one for the metric; one line per trial, coloured from blue (worst) to red (best).
fn parallel(run: &RunData) -> String {
    let defs = &run.sweep.space.params;
    let maximize = run.sweep.metric.maximize;
    let rows: Vec<(Vec<Option<f64>>, f64)> = run
        .trials
        .iter()
        .filter_map(|t| {
            let v = t.last_value()?;
            let units = defs
                .iter()
                .map(|d| t.params.get(&d.name).map(|x| to_unit(&d.dist, x)))
                .collect();
            Some((units, v))
        })
        .collect();
    let (lo, hi) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.1), b.max(r.1))
        });
    let quality = |v: f64| {
        let q = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        if maximize {
            q
        } else {
            1.0 - q
        }
    };
    let axes = defs.len() + 1;
    let (w, h, top, bottom) = (720.0, 360.0, 20.0, 50.0);
    let x = |i: usize| 40.0 + i as f64 * (w - 80.0) / (axes.max(2) - 1) as f64;
    let y = |u: f64| top + (1.0 - u.clamp(0.0, 1.0)) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-size=\"12\">"
    );
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| quality(a.1).total_cmp(&quality(b.1)));
    for (units, v) in &sorted {
        let q = quality(*v);
        let points: Vec<String> = units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| u.map(|u| format!("{:.1},{:.1}", x(i), y(u))))
            .chain(std::iter::once(format!("{:.1},{:.1}", x(axes - 1), y(q))))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"hsl({:.0},70%,50%)\" stroke-opacity=\"0.6\"/>",
            points.join(" "),
            240.0 * (1.0 - q)
        );
    }
    for i in 0..axes {
        let label = defs
            .get(i)
            .map_or(run.sweep.metric.name.as_str(), |d| d.name.as_str());
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{top}\" y2=\"{1}\" stroke=\"black\"/>\
             <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
            x(i),
            h - bottom,
            h - bottom + 18.0,
            esc(label)
        );
    }
    svg.push_str("</svg>");
    svg
}
