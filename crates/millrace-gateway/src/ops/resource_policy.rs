//! PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy: IAM resource policies of a
//! stream or consumer, kept in the stream's `StreamMeta.policies` by the resource's ARN.
//! Policies are stored and returned, not evaluated (millrace does not authenticate callers).

use millrace_stream::StreamError;
use serde_json::Value;

use super::resources;
use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// IAM's largest resource policy, in characters.
pub(crate) const MAX_POLICY_CHARS: usize = 20_480;

/// Checks `policy` the way IAM does before storing it: a JSON object of at most
/// [`MAX_POLICY_CHARS`] with a known `Version` (if any) and a non-empty `Statement` of
/// statements, each an object whose `Effect` is `Allow` or `Deny`.
pub(crate) fn validate_policy(policy: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::invalid(format!("Invalid policy: {why}"));
    if policy.chars().count() > MAX_POLICY_CHARS {
        return Err(bad(&format!(
            "a policy may be at most {MAX_POLICY_CHARS} characters"
        )));
    }
    let doc: Value =
        serde_json::from_str(policy).map_err(|e| bad(&format!("not valid JSON ({e})")))?;
    let Value::Object(doc) = doc else {
        return Err(bad("the policy must be a JSON object"));
    };
    if let Some(v) = doc.get("Version")
        && !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(bad("Version must be \"2012-10-17\" or \"2008-10-17\""));
    }
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err(bad("the policy needs a non-empty Statement")),
    };
    for s in statements {
        let effect = s.as_object().and_then(|s| s.get("Effect"));
        if !matches!(effect.and_then(Value::as_str), Some("Allow" | "Deny")) {
            return Err(bad(
                "every statement must be an object whose Effect is \"Allow\" or \"Deny\"",
            ));
        }
    }
    Ok(())
}

pub async fn put(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    resources::check(&mut c, &req)?;
    let policy = c.required("Policy", req.opt_str("Policy")?);
    c.finish()?;
    let policy = policy.expect("checked").to_owned();
    validate_policy(&policy)?;
    let r = resources::find(gw, &req)?;
    gw.blocking(move |_| {
        r.stream
            .update_meta(|m| {
                m.policies.insert(r.arn.clone(), policy);
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}

pub fn get(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    resources::check(&mut c, &req)?;
    c.finish()?;
    let r = resources::find(gw, &req)?;
    let policy = r.stream.meta().policies.get(&r.arn).cloned();
    // A resource without a policy has the empty one.
    Ok(Out::map([(
        "Policy",
        Out::str(policy.unwrap_or_else(|| "{}".into())),
    )]))
}

pub async fn delete(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    resources::check(&mut c, &req)?;
    c.finish()?;
    let r = resources::find(gw, &req)?;
    let arn = r.arn.clone();
    let removed = gw
        .blocking(move |_| {
            let mut removed = false;
            r.stream
                .update_meta(|m| {
                    removed = m.policies.remove(&r.arn).is_some();
                    Ok::<(), StreamError>(())
                })
                .map_err(ApiError::from)?;
            Ok(removed)
        })
        .await?;
    if !removed {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("No resource policy found for resource {arn}."),
        ));
    }
    Ok(Out::map([]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_checked() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kinesis:GetRecords","Resource":"*"}]}"#;
        assert!(validate_policy(ok).is_ok());
        assert!(validate_policy(r#"{"Statement":{"Effect":"Deny"}}"#).is_ok());
        for bad in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"Statement":[]}"#,
            r#"{"Version":"2020-01-01","Statement":[{"Effect":"Allow"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe"}]}"#,
            r#"{"Statement":["Allow"]}"#,
        ] {
            let e = validate_policy(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
        }
        let huge = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Sid":"{}"}}]}}"#,
            "x".repeat(MAX_POLICY_CHARS)
        );
        assert!(validate_policy(&huge).is_err());
    }
}
