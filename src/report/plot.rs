//! Self-contained SVG line charts (no fonts, scripts or files beyond the SVG itself), for
//! curves such as the learning-rate range test.

use std::fmt::Write as _;

/// One named curve of `(x, y)` points, drawn as a line or as dots.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub dots: bool,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Plot x on a log10 scale (the points' x must then be positive).
    pub x_log: bool,
    /// Clip y to this range (e.g. to keep an exploding loss from flattening the rest).
    pub y_range: Option<(f64, f64)>,
    /// Vertical markers: `(x, label)`.
    pub markers: Vec<(f64, String)>,
    /// Draw the series' labels as a legend (off for many unnamed curves).
    pub legend: bool,
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];
/// Canvas size and margins, in pixels.
const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart<'_> {
    /// The x axis's coordinate of `x` (its log10 on a log axis).
    fn fx(&self, x: f64) -> f64 {
        if self.x_log {
            x.log10()
        } else {
            x
        }
    }

    /// The ranges the axes span: every finite point's (or `y_range`), with a unit margin
    /// for an empty or single-valued range.
    fn ranges(&self, series: &[Series]) -> ((f64, f64), (f64, f64)) {
        let fx = |x: f64| self.fx(x);
        let finite: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| fx(*x).is_finite() && y.is_finite())
            .collect();
        let (mut x0, mut x1) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(fx(p.0)), b.max(fx(p.0)))
            });
        let (mut y0, mut y1) = self.y_range.unwrap_or_else(|| {
            finite
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                    (a.min(p.1), b.max(p.1))
                })
        });
        // An empty or single-valued range (or NaN bounds) gets a unit margin.
        if x0.partial_cmp(&x1) != Some(std::cmp::Ordering::Less) {
            (x0, x1) = (x0.min(0.0) - 1.0, x1.max(0.0) + 1.0);
        }
        if y0.partial_cmp(&y1) != Some(std::cmp::Ordering::Less) {
            (y0, y1) = (y0.min(0.0) - 1.0, y1.max(0.0) + 1.0);
        }
        ((x0, x1), (y0, y1))
    }

    /// Axes, ticks (five per axis) and labels.
    fn axes(&self, out: &mut String, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) {
        let _ = writeln!(
            out,
            "<path d=\"M{LEFT},{TOP} V{} H{}\" stroke=\"black\" fill=\"none\"/>",
            H - BOTTOM,
            W - RIGHT
        );
        for k in 0..=4 {
            let t = k as f64 / 4.0;
            let (xv, yv) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            let xs = LEFT + t * (W - LEFT - RIGHT);
            let ys = H - BOTTOM - t * (H - TOP - BOTTOM);
            // Over less than two decades, one significant digit would repeat a label
            // (model sizes of 3.1e3 to 7.4e3 all read 5e3 or 3e3).
            let x_text = if self.x_log && x1 - x0 < 2.0 {
                format!("{:.1e}", 10f64.powf(xv))
            } else if self.x_log {
                format!("{:.0e}", 10f64.powf(xv))
            } else {
                format!("{xv:.3}")
            };
            let _ = writeln!(
                out,
                "<text x=\"{xs}\" y=\"{}\" text-anchor=\"middle\">{x_text}</text>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{yv:.3}</text>",
                H - BOTTOM + 16.0,
                LEFT - 6.0,
                ys + 4.0
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
             <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>",
            (LEFT + W - RIGHT) / 2.0,
            H - 12.0,
            escape(self.x_label),
            (TOP + H - BOTTOM) / 2.0,
            (TOP + H - BOTTOM) / 2.0,
            escape(self.y_label)
        );
    }

    pub fn svg(&self, series: &[Series]) -> String {
        let fx = |x: f64| self.fx(x);
        let ((x0, x1), (y0, y1)) = self.ranges(series);
        let px = |x: f64| LEFT + (fx(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT);
        let py = |y: f64| TOP + (1.0 - (y.clamp(y0, y1) - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
            W / 2.0,
            escape(self.title)
        );
        self.axes(&mut out, (x0, x1), (y0, y1));
        for (i, s) in series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let path: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| fx(*x).is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            if s.dots {
                for p in &path {
                    let (x, y) = p.split_once(',').expect("formatted as x,y");
                    let _ = writeln!(
                        out,
                        "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{colour}\"/>"
                    );
                }
            } else if !path.is_empty() {
                let _ = writeln!(
                    out,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
                    path.join(" ")
                );
            }
            if self.legend {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" fill=\"{colour}\" text-anchor=\"end\">{}</text>",
                    W - RIGHT - 4.0,
                    TOP + 14.0 * (i as f64 + 1.0),
                    escape(&s.label)
                );
            }
        }
        for (x, label) in &self.markers {
            if fx(*x).is_finite() {
                let _ = writeln!(
                    out,
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"gray\" stroke-dasharray=\"4 3\"/>\
                     <text x=\"{2:.1}\" y=\"{3}\" fill=\"gray\">{4}</text>",
                    px(*x),
                    H - BOTTOM,
                    px(*x) + 4.0,
                    TOP + 12.0,
                    escape(label)
                );
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_well_formed_and_places_points() {
        let chart = Chart {
            title: "a <b> & c",
            x_label: "lr",
            y_label: "loss",
            x_log: true,
            y_range: None,
            markers: vec![(0.1, "pick".into())],
            legend: true,
        };
        let svg = chart.svg(&[Series {
            label: "seed 1".into(),
            points: vec![(0.001, 2.0), (0.01, 1.0), (0.1, f64::NAN), (1.0, 3.0)],
            dots: false,
        }]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        // Three finite points: the NaN is skipped, the first at the left edge.
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(line.matches(',').count(), 3);
        assert!(line.contains(&format!("{LEFT:.1},")));
        assert!(svg.contains("pick"));
    }
}
