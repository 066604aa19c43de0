//! IAM JSON policy documents: parsing, validation and evaluation as AWS evaluates them.
//!
//! [`Policy::parse`] reads identity policies, [`Policy::parse_resource`] resource policies
//! (which name a `Principal`). [`Policy::effect`] evaluates one policy against a
//! [`RequestContext`]; [`decide`] combines identity and resource policies with AWS's
//! same-account logic: explicit deny, then allow, then implicit deny.
//!
//! As in AWS, `${...}` policy variables are substituted only in documents with
//! `"Version": "2012-10-17"`; in `2008-10-17` documents (the default when `Version`
//! is absent) they are literal text.
//!
//! The module is split by concern: `pattern` holds wildcard matching and policy variable
//! substitution, `condition` the `Condition` operators and their values, and `principal`
//! the `Principal` / `NotPrincipal` elements of resource policies.

mod condition;
mod pattern;
mod principal;

use std::net::IpAddr;

use serde_json::{Map, Value};

use condition::{Condition, parse_conditions};
use pattern::{action_matches, resource_applies};
use principal::{PrincipalPattern, parse_principal};

/// Statement keys the policy grammar allows.
const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// A parsed policy document (identity policy or resource policy).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
    /// Whether `${...}` policy variables are substituted (Version 2012-10-17).
    variables: bool,
}

/// Why a policy document was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("invalid policy JSON: {0}")]
    Json(String),
    #[error("policy document must be a JSON object")]
    NotAnObject,
    #[error("unknown top-level key {0:?}")]
    UnknownKey(String),
    #[error("unsupported Version {0}: expected \"2012-10-17\" or \"2008-10-17\"")]
    UnsupportedVersion(String),
    #[error("Id must be a string")]
    BadId,
    #[error("Statement must be an object or a non-empty array")]
    BadStatementList,
    /// A problem in the statement at 1-based position `index`.
    #[error("Statement {index}: {problem}")]
    Statement {
        index: usize,
        problem: StatementProblem,
    },
}

/// What is wrong with one statement of a policy.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StatementProblem {
    #[error("statement must be a JSON object")]
    NotAnObject,
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("Sid must be a string")]
    BadSid,
    #[error("duplicate Sid {0:?}")]
    DuplicateSid(String),
    #[error("Effect must be \"Allow\" or \"Deny\"")]
    BadEffect,
    #[error("exactly one of {0} and {1} is required")]
    ExactlyOne(&'static str, &'static str),
    #[error("{0} is not allowed in an identity policy")]
    PrincipalInIdentityPolicy(&'static str),
    #[error("{0} must be a string or a non-empty array of strings")]
    BadList(&'static str),
    #[error("invalid action {0:?}: expected \"*\" or \"service:action\"")]
    BadAction(String),
    #[error("invalid {0}: {1}")]
    BadPrincipal(&'static str, String),
    #[error("Condition must be an object of the form {{operator: {{key: value(s)}}}}")]
    BadConditionShape,
    #[error("unsupported condition operator {0}")]
    UnsupportedOperator(String),
    #[error("condition {operator} on key {key}: invalid value {value}")]
    BadConditionValue {
        operator: String,
        key: String,
        value: String,
    },
}

/// The effect a statement (or a policy) has on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What AWS's evaluation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// The request as the policy language sees it.
#[derive(Debug, Clone)]
pub struct RequestContext<'a> {
    /// "kinesis:PutRecord", "firehose:PutRecordBatch", "sagemaker:InvokeEndpoint".
    pub action: &'a str,
    /// The resource ARN, or "*" when an action has no resource.
    pub resource: &'a str,
    /// e.g. "arn:aws:iam::000000000000:user/producer"
    pub principal_arn: &'a str,
    /// the 12-digit account id of the principal, e.g. "000000000000"
    pub account: &'a str,
    /// the principal's name (aws:username, aws:userid); empty means those keys are absent
    pub username: &'a str,
    /// aws:SourceIp; None means the key is absent
    pub source_ip: Option<IpAddr>,
    /// aws:SecureTransport
    pub secure_transport: bool,
    /// Seconds since the Unix epoch (aws:CurrentTime / aws:EpochTime).
    pub now_epoch_secs: i64,
    /// Request-specific keys, compared case-insensitively by key name. A key listed
    /// several times is a multi-valued key (for ForAllValues / ForAnyValue).
    pub extra: &'a [(&'a str, &'a str)],
}

/// AWS's evaluation logic for a same-account request: an explicit Deny in any identity policy
/// or in the resource policy wins; otherwise Allow if any of them allows; otherwise ImplicitDeny.
pub fn decide(identity: &[Policy], resource: Option<&Policy>, ctx: &RequestContext) -> Decision {
    let effects: Vec<Option<Effect>> = identity
        .iter()
        .chain(resource)
        .map(|policy| policy.effect(ctx))
        .collect();
    if effects.contains(&Some(Effect::Deny)) {
        Decision::ExplicitDeny
    } else if effects.contains(&Some(Effect::Allow)) {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

impl Policy {
    /// Parses and validates an identity policy document (no Principal/NotPrincipal allowed).
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        parse_document(json, false)
    }

    /// Parses and validates a resource policy document: every statement needs exactly one of
    /// Principal/NotPrincipal, and Resource may be absent (the resource the policy is attached to).
    pub fn parse_resource(json: &str) -> Result<Policy, PolicyError> {
        parse_document(json, true)
    }

    /// Some(Deny) if any matching statement denies, else Some(Allow) if any matching statement
    /// allows, else None.
    pub fn effect(&self, ctx: &RequestContext) -> Option<Effect> {
        let mut effect = None;
        for statement in self.statements.iter() {
            if statement.applies(ctx, self.variables) {
                if statement.effect == Effect::Deny {
                    return Some(Effect::Deny);
                }
                effect = Some(Effect::Allow);
            }
        }
        effect
    }
}

/// A list of patterns that either applies to what it names or, negated, to everything else.
#[derive(Debug, Clone, PartialEq)]
struct Scope<T> {
    negated: bool,
    items: Vec<T>,
}

impl<T> Scope<T> {
    /// Whether the scope applies, given a test of one item.
    fn applies(&self, test: impl Fn(&T) -> bool) -> bool {
        self.items.iter().any(test) != self.negated
    }
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// Some only in resource policies.
    principals: Option<Scope<PrincipalPattern>>,
    actions: Scope<String>,
    /// None: the resource the (resource) policy is attached to.
    resources: Option<Scope<String>>,
    conditions: Vec<Condition>,
}

impl Statement {
    /// Whether principal, action, resource and all conditions match the request.
    fn applies(&self, ctx: &RequestContext, variables: bool) -> bool {
        let vars = variables.then_some(ctx);
        self.principals
            .as_ref()
            .is_none_or(|p| p.applies(|pattern| pattern.matches(ctx)))
            && self.actions.applies(|a| action_matches(a, ctx.action))
            && self
                .resources
                .as_ref()
                .is_none_or(|r| resource_applies(r, ctx.resource, vars))
            && self.conditions.iter().all(|c| c.holds(ctx, vars))
    }
}

/// Parses a whole document; `resource_policy` selects the Principal rules.
fn parse_document(json: &str, resource_policy: bool) -> Result<Policy, PolicyError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
    let obj = doc.as_object().ok_or(PolicyError::NotAnObject)?;
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
    {
        return Err(PolicyError::UnknownKey(key.clone()));
    }
    let variables = match obj.get("Version") {
        None => false,
        Some(Value::String(v)) if v == "2012-10-17" => true,
        Some(Value::String(v)) if v == "2008-10-17" => false,
        Some(other) => return Err(PolicyError::UnsupportedVersion(other.to_string())),
    };
    if obj.get("Id").is_some_and(|id| !id.is_string()) {
        return Err(PolicyError::BadId);
    }
    let raw: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(PolicyError::BadStatementList),
    };
    let mut sids: Vec<String> = Vec::new();
    let mut statements = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let at = |problem| PolicyError::Statement {
            index: i + 1,
            problem,
        };
        let (sid, statement) = parse_statement(value, resource_policy).map_err(at)?;
        if let Some(sid) = sid.filter(|s| !s.is_empty()) {
            if sids.contains(&sid) {
                return Err(at(StatementProblem::DuplicateSid(sid)));
            }
            sids.push(sid);
        }
        statements.push(statement);
    }
    Ok(Policy {
        statements,
        variables,
    })
}

/// Parses one statement, returning its Sid alongside.
fn parse_statement(
    value: &Value,
    resource_policy: bool,
) -> Result<(Option<String>, Statement), StatementProblem> {
    use StatementProblem as P;
    let obj = value.as_object().ok_or(P::NotAnObject)?;
    if let Some(key) = obj.keys().find(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
        return Err(P::UnknownKey(key.clone()));
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(P::BadSid),
    };
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(P::BadEffect),
    };
    let principals = if resource_policy {
        let principals = either(obj, "Principal", "NotPrincipal", parse_principal)?;
        Some(principals.ok_or(P::ExactlyOne("Principal", "NotPrincipal"))?)
    } else if let Some(key) = ["Principal", "NotPrincipal"]
        .into_iter()
        .find(|k| obj.contains_key(*k))
    {
        return Err(P::PrincipalInIdentityPolicy(key));
    } else {
        None
    };
    let actions = either(obj, "Action", "NotAction", parse_actions)?
        .ok_or(P::ExactlyOne("Action", "NotAction"))?;
    let resources = either(obj, "Resource", "NotResource", |name, v| {
        string_list(v).ok_or(P::BadList(name))
    })?;
    if resources.is_none() && !resource_policy {
        return Err(P::ExactlyOne("Resource", "NotResource"));
    }
    let conditions = obj
        .get("Condition")
        .map_or(Ok(Vec::new()), parse_conditions)?;
    let statement = Statement {
        effect,
        principals,
        actions,
        resources,
        conditions,
    };
    Ok((sid, statement))
}

/// Reads the element `pos` or its negation `neg` (at most one may be present).
fn either<T>(
    obj: &Map<String, Value>,
    pos: &'static str,
    neg: &'static str,
    parse: impl Fn(&'static str, &Value) -> Result<Vec<T>, StatementProblem>,
) -> Result<Option<Scope<T>>, StatementProblem> {
    let (negated, name, value) = match (obj.get(pos), obj.get(neg)) {
        (Some(_), Some(_)) => return Err(StatementProblem::ExactlyOne(pos, neg)),
        (Some(v), None) => (false, pos, v),
        (None, Some(v)) => (true, neg, v),
        (None, None) => return Ok(None),
    };
    let items = parse(name, value)?;
    Ok(Some(Scope { negated, items }))
}

/// A string or a non-empty array of strings.
fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// A scalar (string, number, bool) or a non-empty array of scalars, as text.
fn scalar_list(value: &Value) -> Option<Vec<String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

/// Action / NotAction: "*" or "service:pattern".
fn parse_actions(name: &'static str, value: &Value) -> Result<Vec<String>, StatementProblem> {
    let actions = string_list(value).ok_or(StatementProblem::BadList(name))?;
    match actions
        .iter()
        .find(|a| *a != "*" && a.split_once(':').is_none_or(|(svc, _)| svc.is_empty()))
    {
        Some(bad) => Err(StatementProblem::BadAction(bad.clone())),
        None => Ok(actions),
    }
}

#[cfg(test)]
mod tests;
