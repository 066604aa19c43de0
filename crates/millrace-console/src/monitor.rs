//! Monitoring: each served model's input drift (PSI per feature against its training
//! baseline), as the endpoint or scorer last saved it, with its alert state and each
//! feature's drift over time (SVG drawn here).
//!
//! | route | page |
//! |---|---|
//! | `/monitor` | every monitored model: alert state, the most drifted feature, records |
//! | `/monitor/{name}` | the summary, drift over time for the most drifted features, every feature's PSI |

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use crate::pages::{arrival, page, refused};
use crate::predict::blocking;
use crate::{Drift, Shared};

/// Features drawn on the over-time chart (the most drifted now).
const LINES: usize = 5;
/// The chart's plot area, in SVG units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 200.0;

/// A model's row of the list, and the summary of its page.
struct Shown {
    drift: Drift,
    updated: String,
    /// `drifting`, `ok` or `too few records`.
    alert: &'static str,
}

fn shown(drift: Drift) -> Shown {
    let alert = if drift.drifting {
        "drifting"
    } else if drift.window_records < drift.min_records {
        "too few records"
    } else {
        "ok"
    };
    Shown {
        updated: arrival(drift.at_ms),
        alert,
        drift,
    }
}

#[derive(Template)]
#[template(path = "monitor.html")]
struct MonitorPage {
    title: &'static str,
    models: Vec<Shown>,
}

/// `GET /monitor`.
pub(crate) async fn list(State(source): State<Shared>) -> Response {
    match blocking(&source, |s| s.drifts()).await {
        Ok(all) => page(MonitorPage {
            title: "Monitor",
            models: all.into_iter().map(shown).collect(),
        }),
        Err(e) => refused(e),
    }
}

/// One feature's line on the chart.
struct Line {
    feature: String,
    /// `x,y` pairs in the plot's units.
    points: String,
    /// Its colour class (`l0` … `l4`).
    class: String,
}

/// A feature's bar in the table (PSI scaled to the largest, in percent).
struct Bar {
    feature: String,
    psi: f64,
    percent: f64,
    over: bool,
}

#[derive(Template)]
#[template(path = "monitor_model.html")]
struct ModelPage {
    title: String,
    model: Shown,
    lines: Vec<Line>,
    /// The threshold's height on the chart, and the axis' top value.
    threshold_y: f64,
    top: f64,
    /// The chart's time span as text (first and last point).
    from: String,
    to: String,
    points: usize,
    bars: Vec<Bar>,
}

/// `GET /monitor/{name}`.
pub(crate) async fn model(State(source): State<Shared>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    let drift = match blocking(&source, move |s| s.drift(&n)).await {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let chart = chart(&drift);
    let largest = drift.features.first().map_or(0.0, |f| f.1).max(1e-12);
    let bars = drift
        .features
        .iter()
        .map(|(feature, psi)| Bar {
            feature: feature.clone(),
            psi: *psi,
            percent: (psi / largest * 100.0).clamp(0.0, 100.0),
            over: *psi >= drift.threshold,
        })
        .collect();
    page(ModelPage {
        title: format!("Monitor: {name}"),
        lines: chart.lines,
        threshold_y: chart.threshold_y,
        top: chart.top,
        from: drift
            .history
            .first()
            .map(|p| arrival(p.at_ms))
            .unwrap_or_default(),
        to: drift
            .history
            .last()
            .map(|p| arrival(p.at_ms))
            .unwrap_or_default(),
        points: drift.history.len(),
        bars,
        model: shown(drift),
    })
}

struct Chart {
    lines: Vec<Line>,
    threshold_y: f64,
    top: f64,
}

/// The most drifted features' PSI over the history, scaled into the plot: time across, PSI up
/// from 0 to the larger of 1.5 × the threshold and the largest value seen.
fn chart(d: &Drift) -> Chart {
    let picked: Vec<&str> = d
        .features
        .iter()
        .take(LINES)
        .map(|f| f.0.as_str())
        .collect();
    let top = d
        .history
        .iter()
        .flat_map(|p| p.psi.iter().map(|f| f.1))
        .fold(d.threshold * 1.5, f64::max)
        .max(1e-9);
    let (t0, t1) = match (d.history.first(), d.history.last()) {
        (Some(a), Some(b)) => (a.at_ms, b.at_ms),
        _ => (0, 0),
    };
    let span = (t1 - t0).max(1) as f64;
    let y = |psi: f64| HEIGHT - (psi / top).clamp(0.0, 1.0) * HEIGHT;
    let lines = picked
        .iter()
        .enumerate()
        .map(|(i, feature)| {
            let points = d
                .history
                .iter()
                .filter_map(|p| {
                    let psi = p.psi.iter().find(|f| f.0 == *feature)?.1;
                    let x = if d.history.len() == 1 {
                        WIDTH
                    } else {
                        (p.at_ms - t0) as f64 / span * WIDTH
                    };
                    Some(format!("{x:.1},{:.1}", y(psi)))
                })
                .collect::<Vec<_>>()
                .join(" ");
            Line {
                feature: (*feature).to_owned(),
                points,
                class: format!("l{i}"),
            }
        })
        .collect();
    Chart {
        lines,
        threshold_y: y(d.threshold),
        top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DriftPoint;

    fn drift(history: Vec<DriftPoint>) -> Drift {
        Drift {
            model: "m".into(),
            version: 1,
            at_ms: 0,
            drifting: true,
            summary: String::new(),
            threshold: 0.2,
            window_records: 100,
            min_records: 50,
            features: vec![("x".into(), 0.6), ("c".into(), 0.0)],
            history,
        }
    }

    fn point(at_ms: i64, x: f64) -> DriftPoint {
        DriftPoint {
            at_ms,
            drifting: x >= 0.2,
            psi: vec![("x".into(), x), ("c".into(), 0.0)],
        }
    }

    #[test]
    fn the_chart_spans_the_history_and_scales_to_the_largest_value() {
        let c = chart(&drift(vec![
            point(1_000, 0.0),
            point(2_000, 0.3),
            point(3_000, 0.6),
        ]));
        assert_eq!(c.top, 0.6);
        assert_eq!(c.lines[0].feature, "x");
        assert_eq!(c.lines[0].points, "0.0,200.0 300.0,100.0 600.0,0.0");
        assert_eq!(c.lines[1].points, "0.0,200.0 300.0,200.0 600.0,200.0");
        assert!((c.threshold_y - (200.0 - 0.2 / 0.6 * 200.0)).abs() < 1e-9);
        // Small values still leave the threshold in view.
        let c = chart(&drift(vec![point(1_000, 0.01)]));
        assert!((c.top - 0.3).abs() < 1e-12);
        assert_eq!(c.lines[0].points, "600.0,193.3");
    }
}
