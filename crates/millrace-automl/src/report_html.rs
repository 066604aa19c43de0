//! The model report as one self-contained HTML page (inline SVG, no JavaScript), in the same
//! look as the data-quality report: headline test metrics, the leaderboard, the confusion
//! matrix, ROC and precision-recall curves, and column impact.

use std::fmt::Write;

use millrace_wrangle::profile::svg::{esc, fmt, hbar_chart};

use crate::problem::Task;
use crate::report::{ColumnContributions, Metrics, Report};
use crate::search::Algo;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\
h1{margin-bottom:0}.muted{color:#666}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.sel td{background:#eef6ee}svg{display:block;margin:.5em 0}";

/// A line chart of (x, y) points in [0, 1]², with the diagonal when `diagonal`.
fn curve(points: &[(f64, f64)], x_label: &str, y_label: &str, diagonal: bool) -> String {
    let (w, h, pad) = (320.0, 320.0, 40.0);
    let sx = |x: f64| pad + x.clamp(0.0, 1.0) * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - y.clamp(0.0, 1.0) * (h - 2.0 * pad);
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        w - 2.0 * pad,
        h - 2.0 * pad
    );
    if diagonal {
        let _ = write!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ccc\" stroke-dasharray=\"4\"/>",
            sx(0.0),
            sy(0.0),
            sx(1.0),
            sy(1.0)
        );
    }
    let pts: Vec<String> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
        .collect();
    let _ = write!(
        o,
        "<polyline fill=\"none\" stroke=\"#2a6fdb\" stroke-width=\"2\" points=\"{}\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"10\">0</text><text x=\"{}\" y=\"{}\" font-size=\"10\">1</text></svg>",
        pts.join(" "),
        w / 2.0,
        h - 8.0,
        esc(x_label),
        h / 2.0,
        h / 2.0,
        esc(y_label),
        h - pad + 12.0,
        w - pad - 6.0,
        h - pad + 12.0,
    );
    o
}

/// One row per column: each sampled row's contribution as a dot on a shared axis centred on 0,
/// spread vertically by a fixed jitter, coloured by the row's value.
fn beeswarm(cols: &[ColumnContributions]) -> String {
    let (label_w, plot_w, row_h, top) = (190.0, 420.0, 22.0, 10.0);
    let max = cols
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0.abs()))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-12);
    let x0 = label_w + plot_w / 2.0;
    let height = top + row_h * cols.len() as f64 + 24.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">",
        label_w + plot_w + 20.0
    );
    let bottom = top + row_h * cols.len() as f64;
    let _ = write!(
        s,
        "<line x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{bottom}\" stroke=\"#999\"/>"
    );
    for (i, c) in cols.iter().enumerate() {
        let y = top + row_h * (i as f64 + 0.5);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y + 4.0,
            esc(&c.column)
        );
        for (j, (v, rank)) in c.points.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let x = x0 + v / max * (plot_w / 2.0 - 4.0);
            let jitter = ((j * 7919) % 11) as f64 - 5.0;
            let colour = match rank {
                Some(r) => {
                    let r = r.clamp(0.0, 1.0);
                    format!(
                        "rgb({},{},{})",
                        (40.0 + 200.0 * r) as u8,
                        60,
                        (240.0 - 200.0 * r) as u8
                    )
                }
                None => "#888".to_owned(),
            };
            let _ = write!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.2\" fill=\"{colour}\" \
                 fill-opacity=\"0.7\"/>",
                y + jitter * 0.9
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\">← lowers ({})</text><text x=\"{}\" y=\"{}\" \
         text-anchor=\"end\">raises ({}) →</text></svg>",
        label_w,
        bottom + 16.0,
        fmt(-max),
        label_w + plot_w,
        bottom + 16.0,
        fmt(max)
    );
    s
}

fn params(algo: &Algo) -> String {
    match algo {
        Algo::Linear(p) => format!("l2 {}", fmt(p.l2)),
        Algo::Gbdt(p) => format!(
            "{} rounds, {} leaves, lr {}, min leaf {}",
            p.rounds,
            p.max_leaves,
            fmt(p.learning_rate),
            p.min_leaf
        ),
        Algo::Forest(p) => format!(
            "{} trees, {}, min leaf {}",
            p.trees,
            if p.extra { "extra" } else { "bootstrap" },
            p.min_leaf
        ),
    }
}

pub fn render_html(r: &Report) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let title = format!("Model {} v{}", r.name, r.version);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{CSS}</style></head><body><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    let task = match &r.task {
        Task::Binary { positive, .. } => format!("binary, positive class {positive:?}"),
        Task::Multiclass { classes } => format!("multiclass, {} classes", classes.len()),
        Task::Regression => "regression".into(),
    };
    let _ = write!(
        o,
        "<p class=\"muted\">target <b>{}</b> · {} · objective {} · {} training rows ({}-fold CV) · \
         {} test rows · seed {} · {:.1} s</p>",
        esc(&r.target),
        esc(&task),
        r.objective.name(),
        r.train_rows,
        r.folds,
        r.test_rows,
        r.seed,
        r.seconds
    );

    o.push_str("<h2>Test metrics (held out, never used to choose)</h2><table>");
    for (k, v) in r.headline() {
        let _ = write!(o, "<tr><th>{k}</th><td class=\"num\">{:.4}</td></tr>", v);
    }
    if matches!(r.task, Task::Binary { .. }) {
        let _ = write!(
            o,
            "<tr><th>threshold (tuned on out-of-fold predictions)</th><td class=\"num\">{:.4}</td></tr>",
            r.threshold
        );
    }
    o.push_str("</table>");
    let spread = r.cv_spread();
    if !spread.is_empty() {
        let _ = write!(
            o,
            "<h2>Cross-validated ({} folds of the training part: mean ± sd)</h2>\
             <p class=\"muted\">One split's test figure moves with the seed; the mean over the \
             folds moves less. The ensemble's weights and threshold were chosen on these folds \
             too, so they read a little high.</p><table>",
            r.cv_folds.len()
        );
        for (k, mean, sd) in spread {
            let _ = write!(
                o,
                "<tr><th>{k}</th><td class=\"num\">{mean:.4} ± {sd:.4}</td></tr>"
            );
        }
        o.push_str("</table>");
    }

    o.push_str(
        "<h2>Leaderboard</h2><table><tr><th>candidate</th><th>settings</th><th>CV</th>\
         <th>test</th><th>weight</th><th>CV time (s)</th><th>fit time (s)</th></tr>",
    );
    for e in &r.leaderboard {
        let _ = write!(
            o,
            "<tr{}><td>{}</td><td>{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td>\
             <td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td></tr>",
            if e.weight > 0.0 { " class=\"sel\"" } else { "" },
            esc(&e.name),
            esc(&params(&e.algo)),
            e.cv,
            e.test,
            e.weight,
            e.cv_seconds,
            e.fit_seconds
        );
    }
    o.push_str("</table><p class=\"muted\">Highlighted: members of the ensemble.</p>");

    match &r.test {
        Metrics::Binary(m) => {
            let c = m.confusion;
            let (pos, neg) = match &r.task {
                Task::Binary { positive, negative } => (positive.clone(), negative.clone()),
                _ => (String::new(), String::new()),
            };
            let _ = write!(
                o,
                "<h2>Confusion matrix (test)</h2><table><tr><th>true \\ predicted</th><th>{n}</th><th>{p}</th></tr>\
                 <tr><th>{n}</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\
                 <tr><th>{p}</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr></table>",
                c.tn,
                c.fp,
                c.fn_,
                c.tp,
                n = esc(&neg),
                p = esc(&pos)
            );
        }
        Metrics::Multiclass { confusion, .. } => {
            let classes = r.task.classes();
            o.push_str("<h2>Confusion matrix (test)</h2><table><tr><th>true \\ predicted</th>");
            for c in &classes {
                let _ = write!(o, "<th>{}</th>", esc(c));
            }
            o.push_str("</tr>");
            for (c, row) in classes.iter().zip(confusion) {
                let _ = write!(o, "<tr><th>{}</th>", esc(c));
                for v in row {
                    let _ = write!(o, "<td class=\"num\">{v}</td>");
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>");
        }
        Metrics::Regression { .. } => {}
    }
    if let Some(c) = &r.curves {
        o.push_str(
            "<h2>ROC and precision-recall curves (test)</h2><div style=\"display:flex;gap:2em\">",
        );
        o.push_str(&curve(
            &c.roc,
            "false positive rate",
            "true positive rate",
            true,
        ));
        o.push_str(&curve(&c.pr, "recall", "precision", false));
        o.push_str("</div>");
    }
    let _ = write!(
        o,
        "<h2>Column impact</h2><p class=\"muted\">How much the test {} worsens when a column's \
         values are shuffled (permutation importance).</p>",
        esc(&r.impact_metric)
    );
    let items: Vec<(String, f64)> = r
        .impact
        .iter()
        .take(30)
        .map(|i| (i.column.clone(), i.drop))
        .collect();
    o.push_str(&hbar_chart(&items, "#2a6fdb", None));
    if !r.contributions.is_empty() {
        let n = r.contributions[0].points.len();
        let _ = write!(
            o,
            "<h2>Contributions to the margin</h2><p class=\"muted\">Mean |contribution| of each \
             column to the model's margin ({}) over {n} test rows (exact TreeSHAP and linear \
             contributions), then each row's contribution as a dot: right raises the margin, \
             left lowers it; colour is the row's value, blue low to red high (grey: text).</p>",
            match r.task {
                Task::Binary { .. } => "log-odds",
                Task::Multiclass { .. } => "predicted class's log-probability",
                Task::Regression => "the prediction",
            }
        );
        let items: Vec<(String, f64)> = r
            .contributions
            .iter()
            .take(30)
            .map(|c| (c.column.clone(), c.mean_abs))
            .collect();
        o.push_str(&hbar_chart(&items, "#7a4fd0", None));
        o.push_str(&beeswarm(&r.contributions[..r.contributions.len().min(15)]));
    }
    if !r.columns.dropped.is_empty() {
        o.push_str("<h2>Columns not used</h2><table>");
        for (c, why) in &r.columns.dropped {
            let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(c), esc(why));
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>");
    o
}
