//! `Condition` blocks: operators (string, numeric, date, bool, IP/CIDR, ARN, `Null`, with
//! `IfExists` and the `ForAllValues` / `ForAnyValue` set qualifiers), the request values of
//! condition keys, and the parsers of numeric, address and date values.

use std::cmp::Ordering;
use std::net::IpAddr;

use serde_json::Value;

use super::pattern::{Tok, arn_matches, glob, literal, pattern};
use super::{RequestContext, StatementProblem, scalar_list};

/// Set qualifier of a condition operator.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

/// Orderings of request value against policy value that satisfy a comparison operator.
type Cmp = &'static [Ordering];
const EQ: Cmp = &[Ordering::Equal];
const LT: Cmp = &[Ordering::Less];
const LE: Cmp = &[Ordering::Less, Ordering::Equal];
const GT: Cmp = &[Ordering::Greater];
const GE: Cmp = &[Ordering::Greater, Ordering::Equal];

/// Whether `request` compares to `policy` as `cmp` requires.
fn compare<T: PartialOrd>(cmp: Cmp, request: T, policy: T) -> bool {
    request
        .partial_cmp(&policy)
        .is_some_and(|o| cmp.contains(&o))
}

/// The positive test of an operator family.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Ip,
    Arn,
    Null,
}

/// The test behind a base operator name (negated iff the name contains "Not").
fn base_test(name: &str) -> Option<Test> {
    Some(match name {
        "StringEquals" | "StringNotEquals" => Test::StringEquals,
        "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => Test::StringEqualsIgnoreCase,
        "StringLike" | "StringNotLike" => Test::StringLike,
        "NumericEquals" | "NumericNotEquals" => Test::Numeric(EQ),
        "NumericLessThan" => Test::Numeric(LT),
        "NumericLessThanEquals" => Test::Numeric(LE),
        "NumericGreaterThan" => Test::Numeric(GT),
        "NumericGreaterThanEquals" => Test::Numeric(GE),
        "DateEquals" | "DateNotEquals" => Test::Date(EQ),
        "DateLessThan" => Test::Date(LT),
        "DateLessThanEquals" => Test::Date(LE),
        "DateGreaterThan" => Test::Date(GT),
        "DateGreaterThanEquals" => Test::Date(GE),
        "Bool" => Test::Bool,
        "IpAddress" | "NotIpAddress" => Test::Ip,
        "ArnEquals" | "ArnLike" | "ArnNotEquals" | "ArnNotLike" => Test::Arn,
        "Null" => Test::Null,
        _ => return None,
    })
}

impl Test {
    /// Whether a policy value is acceptable at parse time (values with variables are checked later).
    fn accepts(self, value: &str) -> bool {
        if value.contains("${") {
            return true;
        }
        match self {
            Self::Numeric(_) => parse_number(value).is_some(),
            Self::Date(_) => parse_date(value).is_some(),
            Self::Bool | Self::Null => {
                value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
            }
            Self::Ip => parse_cidr(value).is_some(),
            _ => true,
        }
    }

    /// The positive test of one request value against one (expanded) policy value.
    fn matches(self, request: &str, pattern: &[Tok]) -> bool {
        let policy = || literal(pattern);
        match self {
            Self::StringEquals => policy() == request,
            Self::StringEqualsIgnoreCase => policy().to_lowercase() == request.to_lowercase(),
            Self::StringLike => glob(pattern, request),
            Self::Numeric(cmp) => match (parse_number(request), parse_number(&policy())) {
                (Some(r), Some(p)) => compare(cmp, r, p),
                _ => false,
            },
            Self::Date(cmp) => match (parse_date(request), parse_date(&policy())) {
                (Some(r), Some(p)) => compare(cmp, r, p),
                _ => false,
            },
            Self::Bool => policy().eq_ignore_ascii_case(request),
            Self::Ip => match (request.parse::<IpAddr>(), parse_cidr(&policy())) {
                (Ok(ip), Some(net)) => cidr_contains(net, ip),
                _ => false,
            },
            Self::Arn => arn_matches(pattern, request),
            Self::Null => false,
        }
    }
}

/// A parsed condition operator such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Operator {
    test: Test,
    negated: bool,
    if_exists: bool,
    set: Option<SetQualifier>,
}

/// One `{Operator: {key: values}}` entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Condition {
    operator: Operator,
    /// Lower-cased key name.
    key: String,
    values: Vec<String>,
}

impl Condition {
    /// Evaluates the condition; a policy variable without a value makes it false.
    pub(super) fn holds(&self, ctx: &RequestContext, vars: Option<&RequestContext>) -> bool {
        let Some(patterns) = self
            .values
            .iter()
            .map(|v| pattern(v, vars))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let request = context_values(ctx, &self.key);
        let op = self.operator;
        if op.test == Test::Null {
            let absent = request.is_empty();
            return patterns
                .iter()
                .any(|p| literal(p).eq_ignore_ascii_case("true") == absent);
        }
        if request.is_empty() {
            return op.if_exists
                || match op.set {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => op.negated,
                };
        }
        let satisfied =
            |value: &String| patterns.iter().any(|p| op.test.matches(value, p)) != op.negated;
        match (op.set, op.negated) {
            (Some(SetQualifier::ForAllValues), _) | (None, true) => request.iter().all(satisfied),
            _ => request.iter().any(satisfied),
        }
    }
}
/// Parses and validates a Condition block.
pub(super) fn parse_conditions(value: &Value) -> Result<Vec<Condition>, StatementProblem> {
    let blocks = value
        .as_object()
        .ok_or(StatementProblem::BadConditionShape)?;
    let mut conditions = Vec::new();
    for (name, block) in blocks {
        let operator = parse_operator(name)
            .ok_or_else(|| StatementProblem::UnsupportedOperator(name.clone()))?;
        let entries = block
            .as_object()
            .ok_or(StatementProblem::BadConditionShape)?;
        for (key, raw) in entries {
            let bad = |value: String| StatementProblem::BadConditionValue {
                operator: name.clone(),
                key: key.clone(),
                value,
            };
            let values = scalar_list(raw).ok_or_else(|| bad(raw.to_string()))?;
            if let Some(v) = values.iter().find(|v| !operator.test.accepts(v)) {
                return Err(bad(format!("{v:?}")));
            }
            let key = key.to_ascii_lowercase();
            conditions.push(Condition {
                operator,
                key,
                values,
            });
        }
    }
    Ok(conditions)
}

/// Parses `[ForAllValues:|ForAnyValue:]Name[IfExists]`; None if unsupported.
fn parse_operator(name: &str) -> Option<Operator> {
    let (set, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Some(SetQualifier::ForAllValues), rest)
    } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Some(SetQualifier::ForAnyValue), rest)
    } else {
        (None, name)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(base) => (true, base),
        None => (false, rest),
    };
    let (test, negated) = (base_test(base)?, base.contains("Not"));
    if test == Test::Null && (if_exists || set.is_some()) {
        return None;
    }
    Some(Operator {
        test,
        negated,
        if_exists,
        set,
    })
}

/// The values of a (lower-cased) condition key in the request; empty when absent.
pub(super) fn context_values(ctx: &RequestContext, key: &str) -> Vec<String> {
    let present = |s: &str| {
        if s.is_empty() {
            Vec::new()
        } else {
            vec![s.to_string()]
        }
    };
    match key {
        "aws:sourceip" => ctx.source_ip.iter().map(IpAddr::to_string).collect(),
        "aws:securetransport" => vec![ctx.secure_transport.to_string()],
        "aws:username" | "aws:userid" => present(ctx.username),
        "aws:principalarn" => present(ctx.principal_arn),
        "aws:principalaccount" => present(ctx.account),
        "aws:currenttime" => vec![format_iso8601(ctx.now_epoch_secs)],
        "aws:epochtime" => vec![ctx.now_epoch_secs.to_string()],
        _ => ctx
            .extra
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.to_string())
            .collect(),
    }
}
/// A finite decimal number.
fn parse_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// An address with optional `/prefix` (a plain address is a full-length prefix).
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u32>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((addr, prefix))
}

/// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) lies in the network.
fn cidr_contains((net, prefix): (IpAddr, u32), ip: IpAddr) -> bool {
    match (net, ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Epoch seconds, `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SS[.fff][Z]` (UTC) to epoch seconds.
pub(super) fn parse_date(s: &str) -> Option<i64> {
    if let Ok(epoch) = s.parse::<i64>() {
        return Some(epoch);
    }
    let (date, time) = match s.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (s, None),
    };
    let [y, m, d] = digit_fields(date, '-', [4, 2, 2])?;
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(time) => {
            let time = time.strip_suffix('Z').unwrap_or(time);
            let time = match time.split_once('.') {
                Some((whole, frac))
                    if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    whole
                }
                Some(_) => return None,
                None => time,
            };
            let [h, min, sec] = digit_fields(time, ':', [2, 2, 2])?;
            if h > 23 || min > 59 || sec > 60 {
                return None;
            }
            h * 3600 + min * 60 + sec
        }
    };
    Some(days * 86_400 + secs)
}

/// Splits `s` on `sep` into exactly N all-digit fields of the given widths.
fn digit_fields<const N: usize>(s: &str, sep: char, widths: [usize; N]) -> Option<[i64; N]> {
    let mut out = [0; N];
    let mut parts = s.split(sep);
    for (slot, width) in out.iter_mut().zip(widths) {
        let part = parts.next()?;
        if part.len() != width || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds.
pub(super) fn format_iso8601(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
