//! Hand-written inline SVG charts for the HTML report: horizontal bar charts, histograms and a
//! correlation heat map with its legend. Every number written into an attribute is finite and
//! non-negative where SVG requires it, so the browser logs no attribute errors.

use std::fmt::Write;

/// Escapes text for HTML/SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline are not allowed in XML text.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Short human form of a number; "–" for non-finite.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        return format!("{v:.3e}");
    }
    if v.fract() == 0.0 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn clean(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Horizontal bars, one per (label, value); negative values draw as zero-length bars but keep
/// their printed value.
pub fn hbar_chart(items: &[(String, f64)], color: &str, fixed_max: Option<f64>) -> String {
    let label_w = 190.0;
    let bar_w = 420.0;
    let row_h = 20.0;
    let width = label_w + bar_w + 80.0;
    let height = row_h * items.len() as f64 + 10.0;
    let max = fixed_max.unwrap_or_else(|| items.iter().map(|(_, v)| clean(*v)).fold(0.0, f64::max));
    let max = if max > 0.0 { max } else { 1.0 };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">"#
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let w = clean(*v) / max * bar_w;
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="lbl">{label}</text><rect x="{label_w}" y="{ry}" width="{w:.2}" height="{bh}" fill="{color}"><title>{full}: {val}</title></rect><text x="{vx:.2}" y="{ty}" class="val">{val}</text>"#,
            lx = label_w - 6.0,
            ty = y + 14.0,
            label = esc(&shorten(label, 28)),
            full = esc(label),
            ry = y + 2.0,
            bh = row_h - 4.0,
            vx = label_w + w + 4.0,
            val = esc(&fmt(*v)),
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical histogram bars over `edges` (one more than `counts`).
pub fn histogram(edges: &[f64], counts: &[u64]) -> String {
    let (w, h, pad_b, pad_l) = (320.0, 140.0, 20.0, 4.0);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = counts.len().max(1) as f64;
    let bw = (w - 2.0 * pad_l) / n;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = c as f64 / max * (h - pad_b - 6.0);
        let (lo, hi) = (
            edges.get(i).copied().unwrap_or(f64::NAN),
            edges.get(i + 1).copied().unwrap_or(f64::NAN),
        );
        let _ = write!(
            s,
            r##"<rect x="{x:.2}" y="{y:.2}" width="{bw2:.2}" height="{bh:.2}" fill="#4c78a8"><title>[{lo}, {hi}]: {c}</title></rect>"##,
            x = pad_l + bw * i as f64,
            y = h - pad_b - bh,
            bw2 = clean(bw - 1.0),
            lo = esc(&fmt(lo)),
            hi = esc(&fmt(hi)),
        );
    }
    let first = edges.first().copied().unwrap_or(f64::NAN);
    let last = edges.last().copied().unwrap_or(f64::NAN);
    let _ = write!(
        s,
        r#"<line x1="{pad_l}" y1="{ly}" x2="{x2}" y2="{ly}" class="axis"/><text x="{pad_l}" y="{ty}" class="val">{a}</text><text x="{x2}" y="{ty}" text-anchor="end" class="val">{b}</text></svg>"#,
        ly = h - pad_b,
        x2 = w - pad_l,
        ty = h - 5.0,
        a = esc(&fmt(first)),
        b = esc(&fmt(last)),
    );
    s
}

/// Colour for a value: diverging blue-white-red over [-1, 1] or white-purple over [0, 1].
fn color(v: Option<f64>, diverging: bool) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return "#dddddd".to_string();
    };
    let lerp = |a: (f64, f64, f64), b: (f64, f64, f64), t: f64| {
        let t = t.clamp(0.0, 1.0);
        format!(
            "rgb({},{},{})",
            (a.0 + (b.0 - a.0) * t).round(),
            (a.1 + (b.1 - a.1) * t).round(),
            (a.2 + (b.2 - a.2) * t).round()
        )
    };
    let white = (255.0, 255.0, 255.0);
    if diverging {
        if v < 0.0 {
            lerp(white, (33.0, 102.0, 172.0), -v)
        } else {
            lerp(white, (178.0, 24.0, 43.0), v)
        }
    } else {
        lerp(white, (84.0, 39.0, 143.0), v)
    }
}

/// Heat map of a square matrix with row/column labels and a colour legend.
pub fn heatmap(names: &[String], m: &[Vec<Option<f64>>], diverging: bool) -> String {
    let n = names.len();
    let cell = (560.0 / n.max(1) as f64).clamp(14.0, 44.0);
    let label_w = 150.0;
    let top = 120.0;
    let legend_w = 70.0;
    let width = label_w + cell * n as f64 + legend_w + 20.0;
    let height = (top + cell * n as f64 + 10.0).max(top + 190.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img">"#
    );
    for (i, name) in names.iter().enumerate() {
        let c = label_w + cell * (i as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ly:.2}" text-anchor="end" dominant-baseline="middle" class="lbl">{t}</text><text transform="translate({c:.2},{ty}) rotate(-55)" class="lbl">{t}</text>"#,
            lx = label_w - 6.0,
            ly = top + cell * (i as f64 + 0.5),
            ty = top - 6.0,
            t = esc(&shorten(name, 22)),
        );
    }
    for (i, row) in m.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let (x, y) = (label_w + cell * j as f64, top + cell * i as f64);
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{cw:.2}" height="{cw:.2}" fill="{f}"><title>{a} / {b}: {v}</title></rect>"#,
                cw = cell - 1.0,
                f = color(*v, diverging),
                a = esc(&names[i]),
                b = esc(names.get(j).map(String::as_str).unwrap_or("")),
                v = v
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "undefined".into()),
            );
            if n <= 14
                && let Some(v) = v
            {
                let _ = write!(
                    s,
                    r#"<text x="{tx:.2}" y="{ty:.2}" text-anchor="middle" dominant-baseline="middle" class="cell">{v:.2}</text>"#,
                    tx = x + cell / 2.0,
                    ty = y + cell / 2.0,
                );
            }
        }
    }
    // Legend: a stepped colour bar with its end labels.
    let lx = label_w + cell * n as f64 + 20.0;
    let steps = 20;
    let (lo, hi) = if diverging { (-1.0, 1.0) } else { (0.0, 1.0) };
    for k in 0..steps {
        let v = hi - (hi - lo) * (k as f64 + 0.5) / steps as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx:.2}" y="{y:.2}" width="16" height="8" fill="{f}"/>"#,
            y = top + 8.0 * k as f64,
            f = color(Some(v), diverging),
        );
    }
    let _ = write!(
        s,
        r##"<text x="{tx:.2}" y="{y1}" class="val">{hi}</text><text x="{tx:.2}" y="{y2}" class="val">{lo}</text><rect x="{lx:.2}" y="{y3}" width="16" height="8" fill="#dddddd"/><text x="{tx:.2}" y="{y4}" class="val">n/a</text></svg>"##,
        tx = lx + 20.0,
        y1 = top + 8.0,
        y2 = top + 8.0 * steps as f64,
        y3 = top + 8.0 * steps as f64 + 12.0,
        y4 = top + 8.0 * steps as f64 + 20.0,
    );
    s
}
