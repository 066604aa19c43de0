//! Wildcard patterns (`*`, `?`) of actions, resources and ARNs, and the substitution of
//! `${...}` policy variables into them.

use super::condition::context_values;
use super::{RequestContext, Scope};

/// One element of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Tok {
    Lit(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Tokenizes a pattern, substituting `${...}` variables from `vars` when given (their values
/// are literal text). None when a variable has no value and no default.
pub(super) fn pattern(s: &str, vars: Option<&RequestContext>) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let (Some(ctx), Some(body)) = (vars, rest.strip_prefix("${"))
            && let Some((name, after)) = body.split_once('}')
        {
            out.extend(variable(name, ctx)?.chars().map(Tok::Lit));
            rest = after;
            continue;
        }
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// The value of `${name}`: escapes `*`, `?`, `$`, a single-valued key, or a `'default'`.
fn variable(name: &str, ctx: &RequestContext) -> Option<String> {
    let (key, default) = match name.split_once(',') {
        Some((key, default)) => (key.trim(), Some(default.trim().trim_matches('\''))),
        None => (name.trim(), None),
    };
    if matches!(key, "*" | "?" | "$") {
        return Some(key.to_string());
    }
    let mut values = context_values(ctx, &key.to_ascii_lowercase());
    match values.len() {
        1 => values.pop(),
        _ => default.map(str::to_string),
    }
}

/// The pattern as plain text (wildcards as their characters).
pub(super) fn literal(pattern: &[Tok]) -> String {
    pattern
        .iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

/// Wildcard match of the whole text (`*` spans any characters, including ':' and '/').
pub(super) fn glob(pattern: &[Tok], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Tok::Star) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => (p, t) = (p + 1, t + 1),
            Some(Tok::Lit(c)) if *c == text[t] => (p, t) = (p + 1, t + 1),
            _ => match backtrack {
                Some((star, from)) => {
                    backtrack = Some((star, from + 1));
                    (p, t) = (star + 1, from + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|tok| *tok == Tok::Star)
}

/// Resource / NotResource test. An entry whose variable has no value never makes it apply.
pub(super) fn resource_applies(
    scope: &Scope<String>,
    resource: &str,
    vars: Option<&RequestContext>,
) -> bool {
    let mut matched = false;
    for item in &scope.items {
        match pattern(item, vars) {
            Some(p) => matched |= glob(&p, resource),
            None if scope.negated => return false,
            None => {}
        }
    }
    matched != scope.negated
}

/// Case-insensitive action match.
pub(super) fn action_matches(pattern_text: &str, action: &str) -> bool {
    pattern(&pattern_text.to_lowercase(), None).is_some_and(|p| glob(&p, &action.to_lowercase()))
}

/// ArnEquals/ArnLike: each of the six ':'-separated components matched separately.
pub(super) fn arn_matches(pattern: &[Tok], arn: &str) -> bool {
    let mut parts: Vec<&[Tok]> = Vec::with_capacity(6);
    let mut start = 0;
    for (i, tok) in pattern.iter().enumerate() {
        if *tok == Tok::Lit(':') && parts.len() < 5 {
            parts.push(&pattern[start..i]);
            start = i + 1;
        }
    }
    parts.push(&pattern[start..]);
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && fields.len() == 6 {
        parts.iter().zip(fields).all(|(p, f)| glob(p, f))
    } else {
        glob(pattern, arn)
    }
}
