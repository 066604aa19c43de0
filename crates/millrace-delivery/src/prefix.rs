//! Key prefix templates, compatible with Firehose's expressions:
//! `!{timestamp:yyyy}` (also `MM`, `dd`, `HH`, `mm`, `ss`, and combinations like
//! `yyyy-MM-dd`), `!{partitionKeyFromQuery:NAME}` and, in error prefixes,
//! `!{firehose:error-output-type}`. Times are UTC of the record's arrival.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(String),
    PartitionKey(String),
    ErrorType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(at) = rest.find("!{") {
            if at > 0 {
                parts.push(Part::Literal(rest[..at].to_owned()));
            }
            let end = rest[at..]
                .find('}')
                .ok_or_else(|| format!("unclosed expression in {s:?}"))?;
            let expr = &rest[at + 2..at + end];
            parts.push(match expr.split_once(':') {
                Some(("timestamp", fmt)) => {
                    if fmt.is_empty() || !fmt.chars().all(|c| "yMdHms-_/.".contains(c)) {
                        return Err(format!("unsupported timestamp format {fmt:?}"));
                    }
                    Part::Timestamp(fmt.to_owned())
                }
                Some(("partitionKeyFromQuery", key)) if !key.is_empty() => {
                    Part::PartitionKey(key.to_owned())
                }
                Some(("firehose", "error-output-type")) => Part::ErrorType,
                _ => return Err(format!("unknown expression !{{{expr}}}")),
            });
            rest = &rest[at + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    pub fn partition_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::PartitionKey(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Renders the prefix for a record that arrived at `arrival_ms`.
    pub fn render(
        &self,
        arrival_ms: i64,
        partitions: &BTreeMap<String, String>,
        error_type: &str,
    ) -> String {
        let t = Civil::from_ms(arrival_ms);
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(fmt) => out.push_str(&t.format(fmt)),
                Part::PartitionKey(k) => {
                    out.push_str(partitions.get(k).map(String::as_str).unwrap_or("null"))
                }
                Part::ErrorType => out.push_str(error_type),
            }
        }
        out
    }
}

/// A UTC calendar time, split into the fields Firehose's `!{timestamp:…}` letters name.
struct Civil {
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
}

impl Civil {
    fn from_ms(ms: i64) -> Self {
        use chrono::{Datelike, Timelike};
        let t = millrace_common::time::utc(ms).unwrap_or_default();
        Self {
            y: i64::from(t.year()),
            mo: i64::from(t.month()),
            d: i64::from(t.day()),
            h: i64::from(t.hour()),
            mi: i64::from(t.minute()),
            s: i64::from(t.second()),
        }
    }

    fn format(&self, fmt: &str) -> String {
        let mut out = String::new();
        let b = fmt.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let run = b[i..].iter().take_while(|&&x| x == c).count();
            let v = match c {
                b'y' => Some(if run == 2 { self.y % 100 } else { self.y }),
                b'M' => Some(self.mo),
                b'd' => Some(self.d),
                b'H' => Some(self.h),
                b'm' => Some(self.mi),
                b's' => Some(self.s),
                _ => None,
            };
            match v {
                Some(v) => out.push_str(&format!("{v:0run$}")),
                None => out.push_str(&fmt[i..i + run]),
            }
            i += run;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_firehose_and_hive_prefixes() {
        // 2026-11-25T13:05:09Z
        let ms = 1_795_611_909_000;
        let mut parts = BTreeMap::new();
        parts.insert("contract".to_owned(), "Month-to-month".to_owned());
        let t = Template::parse(
            "raw/!{partitionKeyFromQuery:contract}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
        )
        .unwrap();
        assert_eq!(
            t.render(ms, &parts, ""),
            "raw/Month-to-month/2026/11/25/13/"
        );
        let h = Template::parse(
            "year=!{timestamp:yyyy}/dt=!{timestamp:yyyy-MM-dd}/!{firehose:error-output-type}/",
        )
        .unwrap();
        assert_eq!(
            h.render(ms, &parts, "invalid-json"),
            "year=2026/dt=2026-11-25/invalid-json/"
        );
        assert_eq!(t.partition_keys().collect::<Vec<_>>(), ["contract"]);
        assert!(Template::parse("!{timestamp:yyyy").is_err());
        assert!(Template::parse("!{nope:x}").is_err());
    }

    #[test]
    fn civil_dates_match_known_points() {
        let c = Civil::from_ms(0);
        assert_eq!((c.y, c.mo, c.d, c.h), (1970, 1, 1, 0));
        let c = Civil::from_ms(951_782_400_000); // 2000-02-29T00:00:00Z
        assert_eq!((c.y, c.mo, c.d), (2000, 2, 29));
    }
}
