//! `report.html`: one self-contained, interactive page — its data (`page_data.rs`), its
//! script and its styles inline, nothing fetched at view time, so it opens from disk
//! offline. The script (`assets/*.js`, small hand-written canvas charts) draws brushable
//! parallel coordinates linked to a sortable trial table and to every other view, with a
//! tooltip on every mark. The parts worded here (headline, overfitting advice, test scores)
//! stay readable without the script.

use super::diagnostics::Overfitting;
use super::run::RunData;
use serde_json::Value;
use std::fmt::Write as _;

/// The `id` of every figure every page holds (the browser tests check them); `size`,
/// `pareto` and `lr-finder` appear when the records have what they draw.
pub const FIGURES: [&str; 12] = [
    "parallel",
    "trials",
    "history",
    "importance",
    "slice",
    "contour",
    "edf",
    "timeline",
    "curves",
    "gap",
    "top",
    "selection",
];

/// The page's script: chart primitives, then the views, then the page that links them
/// (one concern per file; concatenated in this order).
const SCRIPT: [&str; 4] = [
    include_str!("assets/chart.js"),
    include_str!("assets/parallel.js"),
    include_str!("assets/views.js"),
    include_str!("assets/page.js"),
];
const STYLE: &str = include_str!("assets/report.css");

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The offline report of a run directory.
pub fn render(run: &RunData, findings: &super::page_data::Findings) -> String {
    page(&super::page_data::page_data(run, findings, false))
}

/// The page around `data` (the report's or the dashboard's).
pub fn page(data: &Value) -> String {
    let name = data["name"].as_str().unwrap_or("");
    // JSON inside a <script> element: `<` escaped so no string can close the element.
    let json = data.to_string().replace('<', "\\u003c");
    let mut page = String::with_capacity(json.len() + 64 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{2}\">\
         <title>popsweep: {0}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>Sweep <code>{0}</code></h1><div id=\"headline\">{1}</div>\
         <div id=\"live\"></div></header>\n",
        esc(name),
        data["headline"].as_str().unwrap_or(""),
        super::dashboard::CSP
    );
    for (id, title) in [
        ("selection", "Selection"),
        ("parallel", "Parallel coordinates"),
        ("trials", "Trials"),
        ("history", "Optimisation history"),
        (
            "importance",
            "Hyperparameter importance (PED-ANOVA; Spearman: + means higher does better)",
        ),
        ("slice", "Slice: the metric against each parameter"),
        ("contour", "Contour of the two most important parameters"),
        ("edf", "Empirical distribution of the metric"),
        ("timeline", "Timeline of the population's slots"),
        ("size", "The metric against model size"),
        ("pareto", "Pareto front"),
        ("curves", "Learning curves"),
        ("gap", "Regularisation: the train−validation gap"),
        ("lr-finder", "Learning-rate range test"),
        ("top", "Top trials and the final test"),
    ] {
        let _ = writeln!(
            page,
            "<section id=\"{id}\"><h2>{}</h2><div class=\"view\"></div></section>",
            esc(title)
        );
    }
    let _ = write!(
        page,
        "<div id=\"tip\" role=\"tooltip\"></div>\n\
         <script type=\"application/json\" id=\"popsweep-data\">{json}</script>\n<script>\n"
    );
    for part in SCRIPT {
        page.push_str(part);
    }
    page.push_str("</script></body></html>\n");
    page
}

/// A number of `summary.json` at `path`, when the run got that far.
fn summary_number(run: &RunData, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(run.summary.as_ref()?, |v, k| v.get(*k))
        .and_then(|v| v.as_f64())
}

/// The headline: the best trial, validation next to test (for nested cross-validation,
/// the test score over the outer folds).
pub(super) fn headline(run: &RunData) -> String {
    let num = |path: &[&str]| summary_number(run, path);
    let (metric, maximize) = (run.sweep.metric.name.as_str(), run.sweep.metric.maximize);
    let result = match (
        num(&["best", "trial"]),
        num(&["best", "val"]),
        num(&["best", "test"]),
    ) {
        _ if run.sweep.cv.is_some() && run.summary.is_some() => format!(
            "Nested cross-validation over {} outer folds ({} inner): <b>test accuracy {:.4} ± \
             {:.4}</b> (mean ± sd; each fold's best configuration retrained on its tuning rows \
             and tested once on the fold).",
            num(&["outer"]).unwrap_or(f64::NAN),
            num(&["inner"]).unwrap_or(f64::NAN),
            num(&["test_accuracy_mean"]).unwrap_or(f64::NAN),
            num(&["test_accuracy_sd"]).unwrap_or(f64::NAN),
        ),
        (Some(t), Some(v), test) => format!(
            "Best trial {t}: {v:.4} on validation, {}; {} epochs trained in all, utilisation {:.2}.",
            match test {
                Some(x) => format!("<b>{x:.4} on the held-out test split</b>"),
                None => "no held-out test split (an external program's own)".into(),
            },
            num(&["epochs_total"]).unwrap_or(f64::NAN),
            num(&["utilisation"]).unwrap_or(f64::NAN)
        ),
        _ if run.is_study() => match run.ranked().first() {
            Some(t) => format!(
                "An ask/tell study: best trial {}, value {:.6} (no held-out test split: the \
                 program that told the values has its own).",
                t.number,
                t.last_value().unwrap_or(f64::NAN)
            ),
            None => "An ask/tell study with no complete trial yet.".into(),
        },
        _ if run.summary.is_some() => "The run ended without a complete trial.".into(),
        _ => "The run has no summary yet (still running, or stopped early): no test score.".into(),
    };
    let direction = if maximize {
        "higher is better"
    } else {
        "lower is better"
    };
    format!(
        "<p>{} trials; metric <b>{}</b> ({direction}). {result}</p>",
        run.trials.len(),
        esc(metric)
    )
}

/// The overfitting flags with their advice, or the thresholds none crossed.
pub(super) fn flags_html(flags: &[Overfitting]) -> String {
    if flags.is_empty() {
        return "<p>No trial overfits (an accuracy gap above 0.03 with a rising validation loss, \
                or above 0.10; for regression a loss gap above 0.3, or 0.5).</p>"
            .into();
    }
    let mut html = String::from(
        "<table><tr><th>trial</th><th>gap</th><th>val loss above its minimum</th>\
         <th>best epoch</th><th>try</th></tr>",
    );
    for f in flags.iter().take(10) {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{:.3}</td><td>{:+.0}%</td><td>{}</td><td class=\"l\">{}</td></tr>",
            f.trial,
            f.gap,
            100.0 * f.val_loss_rise,
            f.best_epoch,
            esc(&f.advice)
        );
    }
    let _ = write!(
        html,
        "</table><p>{} trial(s) flagged as overfitting.</p>",
        flags.len()
    );
    html
}

/// The ten best trials with their parameters, and the final test: the best trial's
/// scores, or each outer fold's under nested cross-validation.
pub(super) fn test_scores(run: &RunData) -> String {
    let (sweep, metric) = (&run.sweep, run.sweep.metric.name.as_str());
    let names: Vec<&str> = sweep.space.params.iter().map(|p| p.name.as_str()).collect();
    let mut table = String::from("<table><tr><th>trial</th><th>state</th><th>epochs</th>");
    let _ = write!(table, "<th>{}</th>", esc(metric));
    for n in &names {
        let _ = write!(table, "<th>{}</th>", esc(n));
    }
    table.push_str("</tr>");
    for t in run.ranked().iter().take(10) {
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
    let folds = (run.summary.as_ref()).and_then(|s| s["folds"].as_array());
    if let Some(folds) = folds {
        table.push_str(
            "<p>Nested cross-validation, each outer fold tested once:</p><table><tr><th>fold</th>\
             <th>trial</th><th>inner validation</th><th>test accuracy</th><th>test loss</th></tr>",
        );
        for f in folds {
            let n = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
            let _ = write!(
                table,
                "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                esc(&f["fold"].to_string()),
                esc(&f["trial"].to_string()),
                n("inner_val"),
                n("test_accuracy"),
                n("test_loss")
            );
        }
        table.push_str("</table>");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_string_of_the_data_can_close_its_script_element() {
        let hostile = "</script><script>alert(1)</script><!--";
        let data = serde_json::json!({
            "name": hostile,
            "headline": esc(hostile),
            "params": [{"name": hostile, "scale": "cat", "values": [hostile]}],
        });
        let html = page(&data);
        // The data's element and the code's: each closed once, by the page itself.
        assert_eq!(html.matches("</script>").count(), 2);
        assert!(!html.contains("<script>alert"));
        let start = html.find("id=\"popsweep-data\">").unwrap() + 19;
        let end = start + html[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(back, data, "the escaped JSON reads back as the data");
    }
}
