//! The pipeline's stages (stream → delivery → lake → prep → train → endpoint → scoring) and
//! the state of each, read from the admin API's `/status` document: what the overview draws
//! and what its event stream sends.

use serde::Serialize;
use serde_json::Value;

/// One stage of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// Stable key, used as the element id on the page.
    pub key: &'static str,
    pub title: &'static str,
    /// `running`, `idle`, `waiting`, `stalled`, `failed` or `off` (not configured).
    pub state: String,
    /// One line: counts, rates, lag.
    pub detail: String,
    /// The newest error of any of the stage's components.
    pub error: Option<String>,
}

/// Every stage, in pipeline order.
pub fn stages(status: &Value) -> Vec<Stage> {
    vec![
        stream(status),
        delivery(status),
        lake(status),
        board(status, "prep", "Prep"),
        board(status, "train", "Train"),
        endpoint(status),
        scoring(status),
    ]
}

fn items<'a>(status: &'a Value, key: &str) -> &'a [Value] {
    status
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn stage(key: &'static str, title: &'static str, state: &str, detail: String) -> Stage {
    Stage {
        key,
        title,
        state: state.to_owned(),
        detail,
        error: None,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn stream(status: &Value) -> Stage {
    let streams = items(status, "streams");
    let records: u64 = streams.iter().map(|s| num(s, "records")).sum();
    let state = if streams.is_empty() { "off" } else { "running" };
    // The streams measured so far (one created a moment ago has no rate yet).
    let rate = |key| -> Option<f64> {
        let known: Vec<f64> = streams
            .iter()
            .filter_map(|s| s.get(key).and_then(Value::as_f64))
            .collect();
        (!known.is_empty()).then(|| known.iter().sum())
    };
    let rates = match (rate("in_per_s"), rate("out_per_s")) {
        (Some(i), Some(o)) if !streams.is_empty() => {
            format!(", {} in, {} out per s", crate::per_s(i), crate::per_s(o))
        }
        _ => String::new(),
    };
    stage(
        "stream",
        "Stream",
        state,
        format!(
            "{}, {records} records{rates}",
            plural(streams.len(), "stream", "streams")
        ),
    )
}

/// Deliveries from streams and Firehose delivery streams: stalled if any is.
fn delivery(status: &Value) -> Stage {
    let all: Vec<&Value> = items(status, "deliveries")
        .iter()
        .chain(items(status, "delivery_streams"))
        .collect();
    if all.is_empty() {
        return stage("delivery", "Delivery", "off", "none configured".into());
    }
    let error = all.iter().find_map(|d| text(d, "last_error"));
    let records: u64 = all.iter().map(|d| num(d, "records")).sum();
    let lag = all
        .iter()
        .map(|d| num(d, "freshness_ms"))
        .max()
        .unwrap_or(0);
    let mut s = stage(
        "delivery",
        "Delivery",
        if error.is_some() {
            "stalled"
        } else {
            "running"
        },
        format!(
            "{}, {records} records delivered, oldest pending {lag} ms",
            plural(all.len(), "delivery", "deliveries")
        ),
    );
    s.error = error;
    s
}

fn lake(status: &Value) -> Stage {
    let all: Vec<&Value> = items(status, "deliveries")
        .iter()
        .chain(items(status, "delivery_streams"))
        .collect();
    let objects: u64 = all.iter().map(|d| num(d, "objects")).sum();
    let errors: u64 = all.iter().map(|d| num(d, "error_records")).sum();
    let state = if all.is_empty() {
        "off"
    } else if objects == 0 {
        "waiting"
    } else {
        "running"
    };
    stage(
        "lake",
        "Lake",
        state,
        format!("{objects} objects written, {errors} records under the error prefix"),
    )
}

/// Prep jobs or training triggers from the pipeline's status board.
fn board(status: &Value, kind: &'static str, title: &'static str) -> Stage {
    let mine: Vec<&Value> = items(status, "pipeline")
        .iter()
        .filter(|c| c.get("kind").and_then(Value::as_str) == Some(kind))
        .collect();
    if mine.is_empty() {
        return stage(kind, title, "off", "none configured".into());
    }
    let states: Vec<String> = mine.iter().filter_map(|c| text(c, "state")).collect();
    let state = ["failed", "running", "idle", "waiting"]
        .into_iter()
        .find(|s| states.iter().any(|x| x == s))
        .unwrap_or("waiting");
    let runs: u64 = mine.iter().map(|c| num(c, "runs")).sum();
    let detail = mine
        .iter()
        .filter_map(|c| text(c, "detail"))
        .next()
        .unwrap_or_else(|| format!("{runs} runs"));
    let mut s = stage(kind, title, state, detail);
    s.error = mine.iter().find_map(|c| text(c, "last_error"));
    s
}

fn endpoint(status: &Value) -> Stage {
    match status.get("endpoint").and_then(|e| e.get("serving")) {
        Some(Value::Array(models)) => {
            let names: Vec<&str> = models.iter().filter_map(Value::as_str).collect();
            stage(
                "endpoint",
                "Endpoint",
                "running",
                format!("serving {}", names.join(", ")),
            )
        }
        _ => stage("endpoint", "Endpoint", "off", "not serving".into()),
    }
}

fn scoring(status: &Value) -> Stage {
    let scorers = items(status, "scoring");
    if scorers.is_empty() {
        return stage("scoring", "Scoring", "off", "none configured".into());
    }
    let records: u64 = scorers.iter().map(|s| num(s, "records")).sum();
    let errors: u64 = scorers.iter().map(|s| num(s, "errors")).sum();
    let backlog: u64 = scorers.iter().map(|s| num(s, "backlog")).sum();
    stage(
        "scoring",
        "Scoring",
        "running",
        format!("{records} scored, {errors} errors, backlog {backlog}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_status_is_every_stage_off_and_a_stalled_delivery_names_its_error() {
        let off = stages(&json!({}));
        assert_eq!(off.len(), 7);
        assert!(off.iter().all(|s| s.state == "off"), "{off:?}");

        let status = json!({
            "streams": [{"name": "churn", "records": 120}],
            "deliveries": [
                {"name": "a", "records": 100, "objects": 3, "error_records": 2, "freshness_ms": 40},
                {"name": "b", "records": 5, "objects": 1, "last_error": "disk full"}
            ],
            "pipeline": [
                {"kind": "prep", "name": "j", "state": "idle", "runs": 2, "detail": ""},
                {"kind": "train", "name": "m", "state": "failed", "runs": 1,
                 "last_error": "no rows"}
            ],
            "endpoint": {"serving": ["churn:v2"]},
            "scoring": [{"records": 7, "errors": 1, "backlog": 3}]
        });
        let s = stages(&status);
        let by = |k: &str| s.iter().find(|x| x.key == k).unwrap().clone();
        assert_eq!(by("stream").detail, "1 stream, 120 records");
        assert_eq!(by("delivery").state, "stalled");
        assert_eq!(by("delivery").error.as_deref(), Some("disk full"));
        assert_eq!(by("lake").state, "running");
        assert!(by("lake").detail.starts_with("4 objects"));
        assert_eq!(by("prep").state, "idle");
        assert_eq!(by("train").state, "failed");
        assert_eq!(by("train").error.as_deref(), Some("no rows"));
        assert_eq!(by("endpoint").detail, "serving churn:v2");
        assert_eq!(by("scoring").detail, "7 scored, 1 errors, backlog 3");

        // Once measured, the streams' rates add up.
        let status = json!({"streams": [
            {"name": "a", "records": 10, "in_per_s": 2.5, "out_per_s": 0.0},
            {"name": "b", "records": 5, "in_per_s": 1200.0, "out_per_s": 30.0},
            {"name": "new", "records": 0, "in_per_s": null, "out_per_s": null}
        ]});
        assert_eq!(
            stages(&status)[0].detail,
            "3 streams, 15 records, 1202 in, 30 out per s"
        );
        let two = json!({"deliveries": [{"name": "a"}, {"name": "b"}]});
        assert!(stages(&two)[1].detail.starts_with("2 deliveries,"));
    }
}
