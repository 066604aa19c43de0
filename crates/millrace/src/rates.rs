//! Records per second into and out of each stream, for `/status` and the console: the
//! streams' counters (records appended, records answered by reads) sampled every second, the
//! rate the change over the last ten seconds.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use millrace_stream::Store;

/// Samples kept per stream: the window the rate is measured over, in seconds.
const WINDOW: usize = 10;

/// One sample: when, records appended, records read.
type Sample = (i64, u64, u64);

#[derive(Default)]
pub struct StreamRates {
    samples: Mutex<HashMap<String, VecDeque<Sample>>>,
}

/// A stream's rates, in records per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rate {
    pub r#in: f64,
    pub out: f64,
}

impl StreamRates {
    /// Takes one sample of every stream of `store` at `now_ms` (streams gone are forgotten).
    pub fn sample(&self, store: &Store, now_ms: i64) {
        let mut all = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let names: Vec<String> = store.list().into_iter().map(|s| s.name).collect();
        all.retain(|name, _| names.contains(name));
        for name in names {
            let Ok(h) = store.stream(&name) else { continue };
            let shards = h.shards();
            let appended = shards.iter().map(|s| s.tip()).sum();
            let read = shards.iter().map(|s| s.served()).sum();
            self.record(&mut all, name, (now_ms, appended, read));
        }
    }

    fn record(&self, all: &mut HashMap<String, VecDeque<Sample>>, name: String, s: Sample) {
        let ring = all.entry(name).or_default();
        if ring.len() > WINDOW {
            ring.pop_front();
        }
        ring.push_back(s);
    }

    /// `name`'s rates over the samples kept; `None` before two samples a moment apart.
    pub fn rate(&self, name: &str) -> Option<Rate> {
        let all = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        rate_of(all.get(name)?)
    }
}

fn rate_of(ring: &VecDeque<Sample>) -> Option<Rate> {
    let (first, last) = (ring.front()?, ring.back()?);
    let seconds = (last.0 - first.0) as f64 / 1000.0;
    if seconds < 0.5 {
        return None;
    }
    // A restart or a reshard can lower a sum: never a negative rate.
    let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
    Some(Rate {
        r#in: per_s(first.1, last.1),
        out: per_s(first.2, last.2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_change_over_the_window_kept() {
        let r = StreamRates::default();
        let mut all = HashMap::new();
        r.record(&mut all, "s".into(), (0, 100, 0));
        assert_eq!(rate_of(&all["s"]), None, "one sample: no rate yet");
        r.record(&mut all, "s".into(), (1_000, 600, 50));
        assert_eq!(
            rate_of(&all["s"]),
            Some(Rate {
                r#in: 500.0,
                out: 50.0
            })
        );
        for i in 2..=20 {
            r.record(&mut all, "s".into(), (i * 1_000, 600 + (i as u64) * 10, 50));
        }
        // The last eleven samples: ten seconds, 100 records in, none out.
        assert_eq!(all["s"].len(), WINDOW + 1);
        assert_eq!(
            rate_of(&all["s"]),
            Some(Rate {
                r#in: 10.0,
                out: 0.0
            })
        );
        r.record(&mut all, "s".into(), (21_000, 0, 0));
        assert_eq!(
            rate_of(&all["s"]).map(|r| r.r#in),
            Some(0.0),
            "never negative"
        );
    }
}
