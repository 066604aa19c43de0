//! `Principal` / `NotPrincipal` elements of resource policies: parsing and matching.

use serde_json::Value;

use super::{RequestContext, StatementProblem, string_list};

/// One entry of a Principal / NotPrincipal element.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PrincipalPattern {
    /// "*" or {"AWS": "*"}.
    Anyone,
    /// Any principal of this account (account id or `arn:...:iam::<account>:root`).
    Account(String),
    /// Exactly this principal ARN.
    Arn(String),
    /// Service, Federated or CanonicalUser principals: kept, never match a user.
    Other(String),
}

impl PrincipalPattern {
    pub(super) fn matches(&self, ctx: &RequestContext) -> bool {
        match self {
            Self::Anyone => true,
            Self::Account(account) => account == ctx.account,
            Self::Arn(arn) => arn == ctx.principal_arn,
            Self::Other(_) => false,
        }
    }
}
/// Principal / NotPrincipal: "*" or {"AWS"|"Service"|"Federated"|"CanonicalUser": ids}.
pub(super) fn parse_principal(
    name: &'static str,
    value: &Value,
) -> Result<Vec<PrincipalPattern>, StatementProblem> {
    let bad = |why: String| StatementProblem::BadPrincipal(name, why);
    if value.as_str() == Some("*") {
        return Ok(vec![PrincipalPattern::Anyone]);
    }
    let obj = value
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad("expected \"*\" or an object such as {\"AWS\": ...}".into()))?;
    let mut patterns = Vec::new();
    for (kind, ids) in obj {
        let ids = string_list(ids)
            .ok_or_else(|| bad(format!("{kind} must be a string or an array of strings")))?;
        for id in ids {
            patterns.push(match kind.as_str() {
                "AWS" => aws_principal(&id).ok_or_else(|| {
                    bad(format!(
                        "AWS principal {id:?} is not \"*\", an account id or an ARN"
                    ))
                })?,
                "Service" | "Federated" | "CanonicalUser" => {
                    PrincipalPattern::Other(format!("{kind}:{id}"))
                }
                _ => return Err(bad(format!("unknown principal type {kind:?}"))),
            });
        }
    }
    Ok(patterns)
}

/// Classifies one {"AWS": id} entry.
fn aws_principal(id: &str) -> Option<PrincipalPattern> {
    if id == "*" {
        return Some(PrincipalPattern::Anyone);
    }
    if is_account_id(id) {
        return Some(PrincipalPattern::Account(id.to_string()));
    }
    match id.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "iam", "", account, "root"] if is_account_id(account) => {
            Some(PrincipalPattern::Account(account.to_string()))
        }
        ["arn", _, _, _, _, _] => Some(PrincipalPattern::Arn(id.to_string())),
        _ => None,
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
