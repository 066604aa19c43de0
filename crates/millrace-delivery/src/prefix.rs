//! Key prefix templates, compatible with Firehose's expressions:
//! `!{timestamp:yyyy}` (also `MM`, `dd`, `HH`, `mm`, `ss`, and combinations like
//! `yyyy-MM-dd`), `!{partitionKeyFromQuery:NAME}`, `!{firehose:random-string}` and, in error
//! prefixes, `!{firehose:error-output-type}`. Times are the record's arrival, in UTC or in
//! the template's time zone (Firehose's `CustomTimeZone`).
//!
//! `!{firehose:random-string}`: Firehose puts 11 random characters there, a new string for
//! each object and each use in the prefix. Here the 11 characters (lowercase hex, like the
//! strings Firehose's documentation shows) are derived from the object's identity, so a replay
//! after a crash writes the same keys (effectively once); they still spread objects across S3
//! key prefixes as random strings do.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// The length of what `!{firehose:random-string}` becomes.
pub const RANDOM_STRING_LEN: usize = 11;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(String),
    PartitionKey(String),
    ErrorType,
    RandomString,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// Where `!{timestamp:…}` is read: UTC when `None`.
    zone: Option<chrono_tz::Tz>,
}

/// The IANA time zone named `name` (`Europe/Paris`, `UTC`).
pub fn time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        "not an IANA time zone name (like UTC, Europe/Paris or America/New_York)".to_owned()
    })
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
                Some(("firehose", "random-string")) => Part::RandomString,
                _ => return Err(format!("unknown expression !{{{expr}}}")),
            });
            rest = &rest[at + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts, zone: None })
    }

    /// The template with its timestamps rendered in `zone` (UTC when `None`).
    pub fn in_zone(mut self, zone: Option<chrono_tz::Tz>) -> Self {
        self.zone = zone;
        self
    }

    pub fn partition_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::PartitionKey(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Whether the template uses `!{firehose:random-string}`.
    pub fn has_random_string(&self) -> bool {
        self.parts.contains(&Part::RandomString)
    }

    /// Renders the prefix for a record that arrived at `arrival_ms`, leaving out random
    /// strings: what records are grouped by (the object's prefix comes from
    /// [`Template::render_object`]).
    pub fn render(
        &self,
        arrival_ms: i64,
        partitions: &BTreeMap<String, String>,
        error_type: &str,
    ) -> String {
        self.render_with(arrival_ms, partitions, error_type, None)
    }

    /// Renders the prefix of one object: as [`Template::render`], with each random string
    /// derived from `identity` (what names the object: its other key parts, shard and
    /// sequence range) and the string's place in the template.
    pub fn render_object(
        &self,
        arrival_ms: i64,
        partitions: &BTreeMap<String, String>,
        error_type: &str,
        identity: &str,
    ) -> String {
        self.render_with(arrival_ms, partitions, error_type, Some(identity))
    }

    fn render_with(
        &self,
        arrival_ms: i64,
        partitions: &BTreeMap<String, String>,
        error_type: &str,
        identity: Option<&str>,
    ) -> String {
        let t = Civil::from_ms(arrival_ms, self.zone);
        let mut out = String::new();
        let mut randoms = 0;
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(fmt) => out.push_str(&t.format(fmt)),
                Part::PartitionKey(k) => {
                    out.push_str(partitions.get(k).map(String::as_str).unwrap_or("null"))
                }
                Part::ErrorType => out.push_str(error_type),
                Part::RandomString => {
                    if let Some(identity) = identity {
                        out.push_str(&random_string(identity, randoms));
                    }
                    randoms += 1;
                }
            }
        }
        out
    }
}

/// The `n`th random string of the object named by `identity`: 11 lowercase hex digits of
/// MD5(identity, n).
fn random_string(identity: &str, n: usize) -> String {
    let mut md5 = Md5::new();
    md5.update(identity.as_bytes());
    md5.update(b"\n");
    md5.update(n.to_string().as_bytes());
    let hex: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
    hex[..RANDOM_STRING_LEN].to_owned()
}

/// A calendar time, split into the fields Firehose's `!{timestamp:…}` letters name.
struct Civil {
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
}

impl Civil {
    fn from_ms(ms: i64, zone: Option<chrono_tz::Tz>) -> Self {
        let t = millrace_common::time::utc(ms).unwrap_or_default();
        match zone {
            Some(z) => Self::of(&t.with_timezone(&z)),
            None => Self::of(&t),
        }
    }

    fn of(t: &(impl chrono::Datelike + chrono::Timelike)) -> Self {
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
    fn timestamps_follow_the_time_zone() {
        // 2026-12-31T23:30:00Z: already the next year in Paris, still 18:30 in New York.
        let ms = 1_798_759_800_000;
        let t = Template::parse("!{timestamp:yyyy-MM-dd}/!{timestamp:HH}/").unwrap();
        let none = BTreeMap::new();
        assert_eq!(t.render(ms, &none, ""), "2026-12-31/23/");
        let paris = t.clone().in_zone(Some(time_zone("Europe/Paris").unwrap()));
        assert_eq!(paris.render(ms, &none, ""), "2027-01-01/00/");
        let ny = t.in_zone(Some(time_zone("America/New_York").unwrap()));
        assert_eq!(ny.render(ms, &none, ""), "2026-12-31/18/");
        assert!(time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn random_strings_are_11_hex_digits_fixed_by_the_object_and_the_place() {
        let ms = 1_795_611_909_000;
        let t = Template::parse(
            "r=!{firehose:random-string}/!{timestamp:yyyy}/!{firehose:random-string}/",
        )
        .unwrap();
        assert!(t.has_random_string());
        assert!(!Template::parse("raw/").unwrap().has_random_string());
        let none = BTreeMap::new();
        assert_eq!(t.render(ms, &none, ""), "r=/2026//");
        let key = t.render_object(ms, &none, "", "d-shardId-000000000000-1-9");
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        let (first, second) = (&parts[0][2..], parts[2]);
        for s in [first, second] {
            assert_eq!(s.len(), RANDOM_STRING_LEN, "{key}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{key}"
            );
        }
        assert_ne!(first, second, "each use is a new string");
        assert_eq!(parts[1], "2026");
        // The same object always gets the same key; another object another one.
        assert_eq!(
            t.render_object(ms, &none, "", "d-shardId-000000000000-1-9"),
            key
        );
        assert_ne!(
            t.render_object(ms, &none, "", "d-shardId-000000000000-10-12"),
            key
        );
        // Pinned: a change here renames objects that a replay must write again.
        assert_eq!(random_string("x", 0), "7b9b21dd4f1");
    }

    #[test]
    fn civil_dates_match_known_points() {
        let c = Civil::from_ms(0, None);
        assert_eq!((c.y, c.mo, c.d, c.h), (1970, 1, 1, 0));
        let c = Civil::from_ms(951_782_400_000, None); // 2000-02-29T00:00:00Z
        assert_eq!((c.y, c.mo, c.d), (2000, 2, 29));
    }
}
