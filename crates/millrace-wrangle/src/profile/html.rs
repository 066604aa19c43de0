//! The report as one self-contained HTML page: inline CSS and inline SVG charts, no scripts and
//! no external resources. All text from the data is HTML-escaped.

use std::fmt::Write;

use super::svg::{esc, fmt, hbar_chart, heatmap, histogram};
use super::{ColumnKind, ColumnProfile, Report};

const CSS: &str = r#"
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin-top:0}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{border-left:4px solid #d62728;background:#fff;padding:6px 10px;margin:4px 0;font-size:14px}
.kind{display:inline-block;min-width:120px;font-weight:600;color:#d62728}
.ok{color:#2a7d2a}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:10px;width:600px}
.card h3{margin:0 0 6px 0;font-size:16px;word-break:break-all}
.muted{color:#666;font-size:13px}
svg.chart{display:block;margin:6px 0}
svg .lbl{font-size:11px;fill:#333}svg .val{font-size:10px;fill:#555}svg .cell{font-size:9px;fill:#111}
svg .axis{stroke:#999;stroke-width:1}
"#;

fn row(out: &mut String, cells: &[(&str, String)]) {
    out.push_str("<tr>");
    for (class, v) in cells {
        if class.is_empty() {
            let _ = write!(out, "<td>{v}</td>");
        } else {
            let _ = write!(out, "<td class=\"{class}\">{v}</td>");
        }
    }
    out.push_str("</tr>");
}

fn opt(v: Option<f64>) -> String {
    v.map(fmt).unwrap_or_else(|| "–".to_string())
}

fn bytes(n: usize) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn column_card(out: &mut String, c: &ColumnProfile) {
    let _ = write!(
        out,
        "<div class=\"card\" id=\"col-{id}\"><h3>{name}</h3><div class=\"muted\">{kind} · Arrow {arrow}</div><table>",
        id = esc(&c.name.replace(' ', "_")),
        name = esc(&c.name),
        kind = match c.inferred_type {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
        },
        arrow = esc(&c.arrow_type),
    );
    let mut pairs: Vec<(&str, String)> = vec![
        ("count", c.count.to_string()),
        ("missing", format!("{} ({:.2}%)", c.missing, c.missing_pct)),
        ("nulls / blank", format!("{} / {}", c.nulls, c.blank)),
        ("mismatched", c.mismatched.to_string()),
        ("unique", c.unique.to_string()),
        (
            "mode",
            format!(
                "{} ({})",
                esc(c.mode.as_deref().unwrap_or("–")),
                c.mode_count
            ),
        ),
    ];
    if let Some(n) = &c.numeric {
        pairs.extend([
            ("min / max", format!("{} / {}", fmt(n.min), fmt(n.max))),
            ("mean / std", format!("{} / {}", fmt(n.mean), opt(n.std))),
            (
                "p1 / p5 / p25",
                format!(
                    "{} / {} / {}",
                    fmt(n.quantiles.p1),
                    fmt(n.quantiles.p5),
                    fmt(n.quantiles.p25)
                ),
            ),
            ("median", fmt(n.quantiles.p50)),
            (
                "p75 / p95 / p99",
                format!(
                    "{} / {} / {}",
                    fmt(n.quantiles.p75),
                    fmt(n.quantiles.p95),
                    fmt(n.quantiles.p99)
                ),
            ),
            ("skewness", opt(n.skewness)),
            (
                "outliers (1.5 IQR)",
                format!("{} ({:.2}%)", n.outliers, n.outlier_pct),
            ),
        ]);
    }
    for (k, v) in pairs {
        let _ = write!(out, "<tr><th>{k}</th><td class=\"num\">{v}</td></tr>");
    }
    out.push_str("</table>");
    if let Some(n) = &c.numeric {
        out.push_str(&histogram(&n.histogram.edges, &n.histogram.counts));
    }
    if let Some(cats) = &c.categories {
        let mut items: Vec<(String, f64)> = cats
            .top
            .iter()
            .map(|v| (v.value.clone(), v.count as f64))
            .collect();
        if cats.other_count > 0 {
            items.push((
                format!("(other: {} values)", cats.other_categories),
                cats.other_count as f64,
            ));
        }
        out.push_str(&hbar_chart(&items, "#72b7b2", None));
    }
    out.push_str("</div>");
}

/// Renders the report as a self-contained HTML page.
pub fn render_html(report: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Data Quality and Insights</title><style>{CSS}</style></head><body><h1>Data Quality and Insights</h1>"
    );
    let s = &report.summary;
    let _ = write!(
        o,
        "<p class=\"muted\">{} rows × {} columns{}</p>",
        s.rows,
        s.columns,
        report
            .target
            .as_ref()
            .map(|t| format!(" · target <b>{}</b>", esc(&t.column)))
            .unwrap_or_default()
    );

    o.push_str("<h2 id=\"warnings\">Warnings</h2>");
    if report.warnings.is_empty() {
        o.push_str("<p class=\"ok\">No warnings.</p>");
    }
    for w in &report.warnings {
        let _ = write!(
            o,
            "<div class=\"warn\"><span class=\"kind\">{}</span> {}</div>",
            w.kind.as_str(),
            esc(&w.message)
        );
    }

    o.push_str("<h2>Dataset summary</h2><table>");
    for (k, v) in [
        ("Rows", s.rows.to_string()),
        ("Columns", s.columns.to_string()),
        (
            "Numeric / categorical columns",
            format!("{} / {}", s.numeric_columns, s.categorical_columns),
        ),
        ("Duplicate rows", s.duplicate_rows.to_string()),
        (
            "Missing cells",
            format!("{} ({:.2}%)", s.missing_cells, s.missing_cells_pct),
        ),
        ("Memory (Arrow)", bytes(s.memory_bytes)),
    ] {
        let _ = write!(o, "<tr><th>{k}</th><td class=\"num\">{v}</td></tr>");
    }
    o.push_str("</table>");
    let sm = &report.sampling;
    let _ = write!(
        o,
        "<p class=\"muted\">{}</p>",
        if sm.sampled {
            esc(&format!(
                "Sampled parts ({} of {} rows, seed {}): {}. Exact on all rows: {}.",
                sm.sample_rows,
                sm.total_rows,
                sm.seed,
                sm.sampled_parts.join("; "),
                sm.exact_parts.join("; ")
            ))
        } else {
            esc(&format!(
                "All {} rows were used for every part (no sampling).",
                sm.total_rows
            ))
        }
    );

    if let Some(t) = &report.target {
        let _ = write!(
            o,
            "<h2>Target: {}</h2><p>Problem type: <b>{:?}</b>",
            esc(&t.column),
            t.problem_type
        );
        if let Some(p) = &t.positive_class {
            let _ = write!(
                o,
                " · positive class <b>{}</b> ({:.1}%)",
                esc(p),
                100.0 * t.positive_rate.unwrap_or(0.0)
            );
        }
        if let Some(r) = t.imbalance_ratio {
            let _ = write!(o, " · imbalance ratio {:.2}", r);
        }
        if let (Some(m), Some(sd)) = (t.mean, t.std) {
            let _ = write!(o, " · mean {} · std {}", fmt(m), fmt(sd));
        }
        o.push_str("</p>");
        if !t.classes.is_empty() {
            let items: Vec<(String, f64)> = t
                .classes
                .iter()
                .map(|c| (c.value.clone(), c.count as f64))
                .collect();
            o.push_str(&hbar_chart(&items, "#f58518", None));
        }
    }

    if !report.feature_power.is_empty() {
        let metric = report.feature_power[0].metric.clone();
        let _ = write!(o, "<h2>Feature power ({})</h2>", esc(&metric));
        let items: Vec<(String, f64)> = report
            .feature_power
            .iter()
            .map(|f| (f.column.clone(), f.power))
            .collect();
        o.push_str(&hbar_chart(&items, "#54a24b", None));
        o.push_str("<table><tr><th>Column</th><th>Type</th><th>AUC</th><th>MI (bits)</th><th>|Spearman|</th></tr>");
        for f in &report.feature_power {
            row(
                &mut o,
                &[
                    ("", esc(&f.column)),
                    ("", format!("{:?}", f.kind).to_lowercase()),
                    ("num", opt(f.auc)),
                    ("num", opt(f.mutual_information_bits)),
                    ("num", opt(f.abs_spearman)),
                ],
            );
        }
        o.push_str("</table>");
    }

    if let Some(m) = &report.model {
        let _ = write!(
            o,
            "<h2>Quick model: column impact</h2><p>{} on {} features; holdout {} = <b>{}</b> ({} train / {} holdout rows, L2 {}, {} Newton iterations{}). Impact = drop in holdout {} when the column is shuffled (mean of 3).</p>",
            esc(&m.model),
            m.features,
            esc(&m.metric),
            fmt(m.holdout_score),
            m.train_rows,
            m.holdout_rows,
            fmt(m.l2),
            m.iterations,
            if m.converged { "" } else { ", not converged" },
            esc(&m.metric),
        );
        let items: Vec<(String, f64)> = m
            .impact
            .iter()
            .map(|c| (c.column.clone(), c.importance))
            .collect();
        o.push_str(&hbar_chart(&items, "#e45756", None));
        if !m.excluded.is_empty() {
            let ex: Vec<String> = m
                .excluded
                .iter()
                .map(|e| format!("{} ({})", esc(&e.column), esc(&e.reason)))
                .collect();
            let _ = write!(o, "<p class=\"muted\">Excluded: {}</p>", ex.join(", "));
        }
    }

    let c = &report.correlations;
    o.push_str("<h2>Correlations</h2>");
    if c.numeric_columns.len() >= 2 {
        o.push_str("<h3>Pearson</h3>");
        o.push_str(&heatmap(&c.numeric_columns, &c.pearson, true));
        o.push_str("<h3>Spearman</h3>");
        o.push_str(&heatmap(&c.numeric_columns, &c.spearman, true));
    } else {
        o.push_str("<p class=\"muted\">Fewer than two numeric columns.</p>");
    }
    if c.categorical_columns.len() >= 2 {
        o.push_str("<h3>Cramér's V (categorical)</h3>");
        o.push_str(&heatmap(&c.categorical_columns, &c.cramers_v, false));
    }

    o.push_str("<h2>Columns</h2><table><tr><th>Column</th><th>Type</th><th>Missing</th><th>Mismatched</th><th>Unique</th><th>Mode</th><th>Mean</th><th>Std</th><th>Min</th><th>Max</th></tr>");
    for col in &report.columns {
        let n = col.numeric.as_ref();
        row(
            &mut o,
            &[
                (
                    "",
                    format!(
                        "<a href=\"#col-{}\">{}</a>",
                        esc(&col.name.replace(' ', "_")),
                        esc(&col.name)
                    ),
                ),
                ("", format!("{:?}", col.inferred_type).to_lowercase()),
                ("num", format!("{} ({:.1}%)", col.missing, col.missing_pct)),
                ("num", col.mismatched.to_string()),
                ("num", col.unique.to_string()),
                ("", esc(col.mode.as_deref().unwrap_or("–"))),
                ("num", opt(n.map(|n| n.mean))),
                ("num", opt(n.and_then(|n| n.std))),
                ("num", opt(n.map(|n| n.min))),
                ("num", opt(n.map(|n| n.max))),
            ],
        );
    }
    o.push_str("</table><div class=\"grid\">");
    for col in &report.columns {
        column_card(&mut o, col);
    }
    o.push_str("</div><h2>Notes</h2><ul>");
    for n in &report.notes {
        let _ = write!(o, "<li>{}</li>", esc(n));
    }
    o.push_str("</ul></body></html>\n");
    o
}
