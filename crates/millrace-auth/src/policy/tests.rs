use super::condition::{format_iso8601, parse_date};
use super::*;
use Decision as D;

const USER: &str = "arn:aws:iam::000000000000:user/producer";
const OTHER: &str = "arn:aws:iam::000000000000:user/other";
const STREAM: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;

/// A PutRecord on [`STREAM`] by `producer` of account 000000000000, over TLS, at [`NOW`].
fn req() -> RequestContext<'static> {
    RequestContext {
        action: "kinesis:PutRecord",
        resource: STREAM,
        principal_arn: USER,
        account: "000000000000",
        username: "producer",
        source_ip: None,
        secure_transport: true,
        now_epoch_secs: NOW,
        extra: &[],
    }
}

/// Whether `policy` allows `action` on `resource` (otherwise as [`req`]).
fn can(policy: &Policy, action: &str, resource: &str) -> bool {
    let request = RequestContext {
        action,
        resource,
        ..req()
    };
    allows(policy, &request)
}

/// [`req`] from another source address.
fn from(ip: &str) -> RequestContext<'static> {
    RequestContext {
        source_ip: ip.parse().ok(),
        ..req()
    }
}

/// A 2012-10-17 identity policy whose single statement has these JSON members.
fn stmt(members: &str) -> Policy {
    let json = format!(r#"{{"Version":"2012-10-17","Statement":{{{members}}}}}"#);
    Policy::parse(&json).expect("valid policy")
}

fn allows(policy: &Policy, request: &RequestContext) -> bool {
    policy.effect(request) == Some(Effect::Allow)
}

/// Whether an allow-everything statement under `condition` allows `request`.
fn cond_allows(condition: &str, request: &RequestContext) -> bool {
    let all = r#""Effect":"Allow","Action":"*","Resource":"*""#;
    allows(&stmt(&format!(r#"{all},"Condition":{condition}"#)), request)
}

/// [`cond_allows`] for [`req`] with these request-specific keys.
fn cond(condition: &str, extra: &[(&str, &str)]) -> bool {
    cond_allows(condition, &RequestContext { extra, ..req() })
}

/// Asserts that every condition evaluates to `expected` for [`req`] with `extra`.
fn expect(conditions: &[&str], extra: &[(&str, &str)], expected: bool) {
    for condition in conditions {
        assert_eq!(
            cond(condition, extra),
            expected,
            "{condition} with {extra:?}"
        );
    }
}

fn parse_err(json: &str) -> String {
    Policy::parse(json).expect_err("rejected").to_string()
}

/// A resource policy allowing kinesis:* to `principal` (a JSON member).
fn resource_policy(principal: &str) -> Policy {
    let statement = format!(r#"{{"Effect":"Allow",{principal},"Action":"kinesis:*"}}"#);
    let json = format!(r#"{{"Version":"2012-10-17","Statement":{statement}}}"#);
    Policy::parse_resource(&json).expect("valid resource policy")
}

#[test]
fn data_scientist_policy() {
    let policy = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"Explore","Effect":"Allow","Resource":"*","Action":["kinesis:Get*",
           "kinesis:List*","kinesis:Describe*","kinesis:SubscribeToShard","sagemaker:InvokeEndpoint"]},
          {"Sid":"NoReshaping","Effect":"Deny","Resource":"*","Action":["kinesis:DeleteStream",
           "kinesis:MergeShards","kinesis:SplitShard","kinesis:UpdateShardCount"]}]}"#,
    )
    .expect("valid policy");
    let policies = [policy];
    let d = |action| decide(&policies, None, &RequestContext { action, ..req() });
    assert_eq!(d("kinesis:DeleteStream"), D::ExplicitDeny);
    assert_eq!(d("kinesis:SplitShard"), D::ExplicitDeny);
    assert_eq!(d("kinesis:GetRecords"), D::Allow);
    assert_eq!(d("kinesis:DescribeStreamSummary"), D::Allow);
    assert_eq!(d("sagemaker:InvokeEndpoint"), D::Allow);
    assert_eq!(d("kinesis:PutRecord"), D::ImplicitDeny);
}

#[test]
fn explicit_deny_in_one_identity_policy_beats_allow_in_another() {
    let allow = stmt(r#""Effect":"Allow","Action":"kinesis:*","Resource":"*""#);
    let deny = stmt(r#""Effect":"Deny","Action":"kinesis:PutRecord","Resource":"*""#);
    let d = |policies: &[Policy]| decide(policies, None, &req());
    assert_eq!(d(&[allow.clone(), deny.clone()]), D::ExplicitDeny);
    assert_eq!(d(&[deny, allow.clone()]), D::ExplicitDeny);
    assert_eq!(d(&[allow]), D::Allow);
    assert_eq!(d(&[]), D::ImplicitDeny);
}

#[test]
fn deny_wins_between_identity_and_resource_policies() {
    let allow = [stmt(r#""Effect":"Allow","Action":"*","Resource":"*""#)];
    let deny = [stmt(r#""Effect":"Deny","Action":"*","Resource":"*""#)];
    let json = r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"kinesis:*"}}"#;
    let res_deny = Policy::parse_resource(json).expect("valid resource policy");
    let res_allow = resource_policy(r#""Principal":{"AWS":"000000000000"}"#);
    let d = |identity: &[Policy], resource| decide(identity, Some(resource), &req());
    assert_eq!(d(&allow, &res_deny), D::ExplicitDeny);
    assert_eq!(d(&deny, &res_allow), D::ExplicitDeny);
    assert_eq!(d(&[], &res_allow), D::Allow);
    assert_eq!(d(&allow, &res_allow), D::Allow);
}

#[test]
fn action_wildcards_are_case_insensitive() {
    let policy = stmt(r#""Effect":"Allow","Action":["Kinesis:get*","k:Put?x"],"Resource":"*""#);
    assert!(can(&policy, "kinesis:GetRecords", STREAM));
    assert!(can(&policy, "KINESIS:GETSHARDITERATOR", STREAM));
    assert!(can(&policy, "k:putax", STREAM));
    assert!(!can(&policy, "k:Putx", STREAM));
    assert!(!can(&policy, "kinesis:PutRecord", STREAM));
    let any = stmt(r#""Effect":"Allow","Action":"*","Resource":"*""#);
    assert!(can(&any, "sagemaker:InvokeEndpoint", "*"));
}

#[test]
fn resource_wildcards_are_case_sensitive_and_span_separators() {
    let resources = r#"["arn:aws:kinesis:*:stream/ord?rs","arn:aws:s3:::lake/*"]"#;
    let policy = stmt(&format!(
        r#""Effect":"Allow","Action":"*","Resource":{resources}"#
    ));
    assert!(can(&policy, "k:a", STREAM));
    assert!(!can(&policy, "k:a", &STREAM.replace("orders", "Orders")));
    assert!(can(&policy, "s3:GetObject", "arn:aws:s3:::lake/a/b:c"));
    assert!(!can(&policy, "s3:GetObject", "arn:aws:s3:::Lake/a"));
    assert!(!can(&policy, "kinesis:ListStreams", "*"));
    let any = stmt(r#""Effect":"Allow","Action":"*","Resource":"*""#);
    assert!(can(&any, "kinesis:ListStreams", "*"));
}

#[test]
fn not_action_applies_to_every_other_action() {
    let policy = stmt(r#""Effect":"Deny","NotAction":["k:Get*","k:List*"],"Resource":"*""#);
    let effect = |action| policy.effect(&RequestContext { action, ..req() });
    assert_eq!(effect("k:PutRecord"), Some(Effect::Deny));
    assert_eq!(effect("sagemaker:InvokeEndpoint"), Some(Effect::Deny));
    assert_eq!(effect("K:getrecords"), None);
}

#[test]
fn not_resource_applies_to_every_other_resource() {
    let policy = stmt(r#""Effect":"Allow","Action":"*","NotResource":"arn:*:stream/audit*""#);
    assert!(can(&policy, "k:a", STREAM));
    assert!(can(&policy, "kinesis:ListStreams", "*"));
    assert!(!can(&policy, "k:a", &STREAM.replace("orders", "audit-log")));
}

#[test]
fn string_equals_family() {
    let holds = [
        r#"{"StringEquals":{"k:t":["gold","silver"]}}"#,
        r#"{"StringEqualsIgnoreCase":{"k:t":"GOLD"}}"#,
        r#"{"StringNotEquals":{"k:t":"Gold"}}"#,
        r#"{"StringNotEqualsIgnoreCase":{"k:t":["tin","lead"]}}"#,
    ];
    let fails = [
        r#"{"StringEquals":{"k:t":"Gold"}}"#,
        r#"{"StringNotEquals":{"k:t":["tin","gold"]}}"#,
        r#"{"StringNotEqualsIgnoreCase":{"k:t":"GOLD"}}"#,
    ];
    expect(&holds, &[("k:t", "gold")], true);
    expect(&fails, &[("k:t", "gold")], false);
}

#[test]
fn string_like_and_not_like() {
    let holds = [
        r#"{"StringLike":{"aws:username":"prod*"}}"#,
        r#"{"StringLike":{"k:t":["x","a?c*"]}}"#,
        r#"{"StringNotLike":{"k:t":["x*","A*"]}}"#,
    ];
    let fails = [
        r#"{"StringLike":{"k:t":"a?c"}}"#,
        r#"{"StringNotLike":{"aws:PrincipalArn":"*:user/prod?cer"}}"#,
    ];
    expect(&holds, &[("k:t", "abc:/d")], true);
    expect(&fails, &[("k:t", "abc:/d")], false);
}

#[test]
fn missing_keys_fail_positive_and_pass_negated_operators() {
    let fails = [
        r#"{"StringEquals":{"k:absent":"x"}}"#,
        r#"{"StringLike":{"k:absent":"*"}}"#,
        r#"{"NumericLessThan":{"k:absent":1}}"#,
        r#"{"DateGreaterThan":{"k:absent":"2020-01-01"}}"#,
        r#"{"ArnLike":{"k:absent":"*"}}"#,
        r#"{"Bool":{"k:absent":"false"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
    ];
    let holds = [
        r#"{"StringNotEquals":{"k:absent":"x"}}"#,
        r#"{"StringNotLike":{"k:absent":"*"}}"#,
        r#"{"StringNotEqualsIgnoreCase":{"k:absent":"x"}}"#,
        r#"{"ArnNotLike":{"k:absent":"*"}}"#,
        r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    ];
    expect(&fails, &[], false);
    expect(&holds, &[], true);
}

#[test]
fn numeric_operators() {
    let holds = [
        r#"{"NumericEquals":{"k:n":10}}"#,
        r#"{"NumericEquals":{"k:n":["1","10.0"]}}"#,
        r#"{"NumericNotEquals":{"k:n":11}}"#,
        r#"{"NumericLessThan":{"k:n":10.5}}"#,
        r#"{"NumericLessThanEquals":{"k:n":10}}"#,
        r#"{"NumericGreaterThan":{"k:n":-3}}"#,
        r#"{"NumericGreaterThanEquals":{"k:n":"10"}}"#,
    ];
    let fails = [
        r#"{"NumericNotEquals":{"k:n":10}}"#,
        r#"{"NumericLessThan":{"k:n":10}}"#,
        r#"{"NumericGreaterThan":{"k:n":10}}"#,
    ];
    expect(&holds, &[("k:n", "10")], true);
    expect(&fails, &[("k:n", "10")], false);
    expect(&holds[..1], &[("k:n", "ten")], false);
}

#[test]
fn date_operators_with_iso_and_epoch_values() {
    let holds = [
        r#"{"DateLessThan":{"aws:CurrentTime":"2026-12-06T00:00:00Z"}}"#,
        r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        r#"{"DateEquals":{"aws:EpochTime":"2026-01-01"}}"#,
        r#"{"DateNotEquals":{"aws:CurrentTime":1767225601}}"#,
        r#"{"DateLessThanEquals":{"aws:EpochTime":1767225600}}"#,
        r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2025-12-31T23:59:59Z"}}"#,
        r#"{"DateGreaterThan":{"k:d":"2025-12-31"}}"#,
    ];
    let fails = [
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2026-12-06"}}"#,
        r#"{"DateLessThan":{"aws:CurrentTime":1767225600}}"#,
        r#"{"DateNotEquals":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}"#,
    ];
    expect(&holds, &[("k:d", "2026-01-01")], true);
    expect(&fails, &[], false);
}

#[test]
fn date_parsing_and_formatting() {
    assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_date("2026-01-01"), Some(NOW));
    assert_eq!(parse_date("2024-02-29T12:30:15.250Z"), Some(1_709_209_815));
    assert_eq!(parse_date("1767225600"), Some(NOW));
    for bad in [
        "2025-02-29",
        "2026-13-01",
        "2026-1-01",
        "2026-01-01T24:00:00Z",
        "soon",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
    assert_eq!(format_iso8601(NOW + 3_723), "2026-01-01T01:02:03Z");
    assert_eq!(format_iso8601(-1), "1969-12-31T23:59:59Z");
}

#[test]
fn bool_on_secure_transport() {
    let all = r#""Effect":"Deny","Action":"*","Resource":"*""#;
    let deny_plain = stmt(&format!(
        r#"{all},"Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}"#
    ));
    let plain = RequestContext {
        secure_transport: false,
        ..req()
    };
    assert_eq!(deny_plain.effect(&req()), None);
    assert_eq!(deny_plain.effect(&plain), Some(Effect::Deny));
    let tls_only = r#"{"Bool":{"aws:SecureTransport":true}}"#;
    assert!(cond_allows(tls_only, &req()));
    assert!(!cond_allows(tls_only, &plain));
}

#[test]
fn ip_address_with_v4_cidrs() {
    let condition = r#"{"IpAddress":{"aws:SourceIp":["10.1.0.0/16","192.0.2.7"]}}"#;
    for ip in ["10.1.200.3", "10.1.0.0", "192.0.2.7", "::ffff:10.1.0.1"] {
        assert!(cond_allows(condition, &from(ip)), "{ip}");
    }
    for ip in ["10.2.0.1", "192.0.2.8", "2001:db8::1", "not an address"] {
        assert!(!cond_allows(condition, &from(ip)), "{ip}");
    }
    let anywhere = r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#;
    assert!(cond_allows(anywhere, &from("8.8.8.8")));
}

#[test]
fn ip_address_with_v6_cidrs_and_not_ip_address() {
    let v6 = r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#;
    assert!(cond_allows(v6, &from("2001:db8:ffff::1")));
    assert!(!cond_allows(v6, &from("2001:db9::1")));
    assert!(!cond_allows(v6, &from("10.0.0.1")));
    let not = r#"{"NotIpAddress":{"aws:SourceIp":["2001:db8::/32","10.0.0.0/8"]}}"#;
    assert!(!cond_allows(not, &from("2001:db8::1")));
    assert!(!cond_allows(not, &from("10.9.9.9")));
    assert!(cond_allows(not, &from("2001:db9::1")));
}

#[test]
fn arn_operators_match_component_wise() {
    let equals = format!(r#"{{"ArnEquals":{{"aws:PrincipalArn":"{USER}"}}}}"#);
    let not_equals = equals.replace("ArnEquals", "ArnNotEquals");
    let holds = [
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/prod*"}}"#,
        r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::1*:*"}}"#,
        &equals,
    ];
    let fails = [
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:*am:*:*:role/*"}}"#,
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:s3::*"}}"#,
        &not_equals,
    ];
    expect(&holds, &[], true);
    expect(&fails, &[], false);
}

#[test]
fn null_operator_tests_key_presence() {
    let absent = r#"{"Null":{"k:t":"true"}}"#;
    let present = r#"{"Null":{"k:t":false}}"#;
    expect(&[absent], &[], true);
    expect(&[absent], &[("k:t", "x")], false);
    expect(&[present], &[("k:t", "x")], true);
    expect(&[present], &[], false);
    expect(&[r#"{"Null":{"aws:username":"true"}}"#], &[], false);
}

#[test]
fn if_exists_passes_when_the_key_is_missing() {
    let holds = [
        r#"{"StringEqualsIfExists":{"k:t":"gold"}}"#,
        r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        r#"{"NumericLessThanIfExists":{"k:n":3}}"#,
    ];
    expect(&holds, &[], true);
    expect(&holds[..1], &[("k:t", "gold")], true);
    expect(&holds[..1], &[("k:t", "tin")], false);
}

#[test]
fn values_are_ored_keys_and_operators_anded() {
    let c = r#"{"StringEquals":{"k:a":["1","2"],"k:b":"x"},"NumericLessThan":{"k:n":5}}"#;
    assert!(cond(c, &[("k:a", "2"), ("k:b", "x"), ("k:n", "4")]));
    assert!(!cond(c, &[("k:a", "3"), ("k:b", "x"), ("k:n", "4")]));
    assert!(!cond(c, &[("k:a", "1"), ("k:b", "y"), ("k:n", "4")]));
    assert!(!cond(c, &[("k:a", "1"), ("k:b", "x"), ("k:n", "6")]));
}

#[test]
fn condition_key_names_are_case_insensitive() {
    let holds = [
        r#"{"StringEquals":{"AWS:USERNAME":"producer","Kinesis:Tier":"gold"}}"#,
        r#"{"StringEquals":{"aws:principalaccount":"000000000000"}}"#,
        r#"{"StringEquals":{"aws:UserId":"producer"}}"#,
    ];
    expect(&holds, &[("kinesis:tier", "gold")], true);
}

#[test]
fn set_qualifiers_on_multi_valued_keys() {
    let any = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","cost"]}}"#;
    let all = r#"{"ForAllValues:StringLike":{"aws:TagKeys":["team","cost*"]}}"#;
    let not = r#"{"StringNotEquals":{"aws:TagKeys":"secret"}}"#;
    let (team, owner) = (("aws:TagKeys", "team"), ("aws:TagKeys", "owner"));
    expect(&[any], &[team, owner], true);
    expect(&[all], &[team, owner], false);
    expect(&[all], &[team, ("aws:tagkeys", "cost-centre")], true);
    expect(&[any], &[], false);
    expect(&[all], &[], true);
    expect(&[not], &[team, ("aws:TagKeys", "secret")], false);
    expect(&[not], &[team, owner], true);
}

#[test]
fn policy_variables_in_resources() {
    let resource = "arn:aws:kinesis:*:${aws:PrincipalAccount}:stream/${aws:username}-*";
    let policy = stmt(&format!(
        r#""Effect":"Allow","Action":"*","Resource":"{resource}""#
    ));
    let own = STREAM.replace("orders", "producer-orders");
    assert!(can(&policy, "k:a", &own));
    assert!(!can(&policy, "k:a", STREAM));
    let as_user = |username| RequestContext {
        username,
        resource: &own,
        ..req()
    };
    assert!(!allows(&policy, &as_user("")), "no username: no match");
    assert!(
        !allows(&policy, &as_user("*")),
        "substituted text is literal"
    );
}

#[test]
fn policy_variables_in_conditions_with_escapes_and_defaults() {
    let owner = r#"{"StringEquals":{"k:o":"${aws:username}"}}"#;
    expect(&[owner], &[("k:o", "producer")], true);
    expect(&[owner], &[("k:o", "${aws:username}")], false);
    let escaped = r#"{"StringLike":{"k:t":"a${*}b${?}${$}*"}}"#;
    expect(&[escaped], &[("k:t", "a*b?$tail")], true);
    expect(&[escaped], &[("k:t", "axb?$tail")], false);
    let defaulted = r#"{"StringEquals":{"k:t":"${k:missing, 'none'}"}}"#;
    expect(&[defaulted], &[("k:t", "none")], true);
    let unresolved = r#"{"StringNotEquals":{"k:t":"${k:missing}"}}"#;
    expect(&[unresolved], &[("k:t", "x")], false);
}

#[test]
fn variables_are_literal_text_in_2008_documents() {
    let statement = r#"{"Effect":"Allow","Action":"*","Resource":"arn:s3:${aws:username}"}"#;
    let policy = Policy::parse(&format!(r#"{{"Statement":{statement}}}"#)).expect("valid");
    assert!(!can(&policy, "s3:GetObject", "arn:s3:producer"));
    assert!(can(&policy, "s3:GetObject", "arn:s3:${aws:username}"));
}

#[test]
fn resource_policy_principals_by_wildcard_and_account() {
    let principals = [
        r#""Principal":"*""#,
        r#""Principal":{"AWS":"*"}"#,
        r#""Principal":{"AWS":"000000000000"}"#,
        r#""Principal":{"AWS":["111111111111","arn:aws:iam::000000000000:root"]}"#,
    ];
    for principal in principals {
        assert!(allows(&resource_policy(principal), &req()), "{principal}");
    }
    let other_account = resource_policy(r#""Principal":{"AWS":"111111111111"}"#);
    assert_eq!(other_account.effect(&req()), None);
}

#[test]
fn resource_policy_principals_by_arn_and_service() {
    let exact = resource_policy(&format!(r#""Principal":{{"AWS":"{USER}"}}"#));
    assert!(allows(&exact, &req()));
    let other = RequestContext {
        principal_arn: OTHER,
        ..req()
    };
    assert!(!allows(&exact, &other));
    let service = resource_policy(r#""Principal":{"Service":"firehose.amazonaws.com"}"#);
    assert_eq!(service.effect(&req()), None);
}

#[test]
fn not_principal_applies_to_everyone_else() {
    let principal = format!(r#""NotPrincipal":{{"AWS":["{USER}","111111111111"]}}"#);
    let json = format!(r#"{{"Statement":{{"Effect":"Deny",{principal},"Action":"*"}}}}"#);
    let policy = Policy::parse_resource(&json).expect("valid resource policy");
    assert_eq!(policy.effect(&req()), None);
    let other = RequestContext {
        principal_arn: OTHER,
        ..req()
    };
    assert_eq!(policy.effect(&other), Some(Effect::Deny));
}

#[test]
fn parse_errors_name_the_statement_and_the_problem() {
    let good = r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#;
    let bad = good.replace("\"Allow\"", "\"allow\"");
    let err = parse_err(&format!(r#"{{"Statement":[{good},{bad}]}}"#));
    assert_eq!(err, "Statement 2: Effect must be \"Allow\" or \"Deny\"");
    let with = |c: &str| format!(r#"{{"Statement":{}}}"#, good.replace('}', c));
    let err = parse_err(&with(r#","Condition":{"ForAnyValue:Foo":{"k":"v"}}}"#));
    assert_eq!(
        err,
        "Statement 1: unsupported condition operator ForAnyValue:Foo"
    );
    let err = parse_err(&with(r#","Condition":{"NullIfExists":{"k":"true"}}}"#));
    assert_eq!(
        err,
        "Statement 1: unsupported condition operator NullIfExists"
    );
    let err = parse_err(&with(
        r#","Condition":{"IpAddress":{"aws:SourceIp":"1.0.0.0/33"}}}"#,
    ));
    let expected = "condition IpAddress on key aws:SourceIp: invalid value \"1.0.0.0/33\"";
    assert_eq!(err, format!("Statement 1: {expected}"));
    let err = parse_err(&with(r#","Condition":{"NumericEquals":{"k":"ten"}}}"#));
    assert!(err.contains("invalid value \"ten\""), "{err}");
}

#[test]
fn parse_errors_name_unknown_keys() {
    let err = parse_err(r#"{"Statement":[],"Extra":1}"#);
    assert_eq!(err, "unknown top-level key \"Extra\"");
    let err = parse_err(r#"{"Statement":{"Effect":"Allow","Action":"*","Resources":"*"}}"#);
    assert_eq!(err, "Statement 1: unknown key \"Resources\"");
}

#[test]
fn parse_errors_for_malformed_statements() {
    let statement = |members: &str| parse_err(&format!(r#"{{"Statement":{{{members}}}}}"#));
    let err = statement(r#""Effect":"Allow","Principal":"*","Action":"*","Resource":"*""#);
    assert_eq!(
        err,
        "Statement 1: Principal is not allowed in an identity policy"
    );
    let err = statement(r#""Effect":"Allow","Action":"*","NotAction":"x:y","Resource":"*""#);
    assert_eq!(
        err,
        "Statement 1: exactly one of Action and NotAction is required"
    );
    let err = statement(r#""Effect":"Allow","Action":"*""#);
    assert_eq!(
        err,
        "Statement 1: exactly one of Resource and NotResource is required"
    );
    let err = statement(r#""Effect":"Allow","Action":"PutRecord","Resource":"*""#);
    assert!(
        err.starts_with("Statement 1: invalid action \"PutRecord\""),
        "{err}"
    );
    let err = statement(r#""Effect":"Allow","Action":[],"Resource":"*""#);
    assert_eq!(
        err,
        "Statement 1: Action must be a string or a non-empty array of strings"
    );
}

#[test]
fn parse_errors_for_malformed_documents() {
    let err = parse_err(r#"{"Statement":[]}"#);
    assert_eq!(err, "Statement must be an object or a non-empty array");
    let err = parse_err(r#"{"Version":"2020-01-01","Statement":{}}"#);
    assert!(
        err.starts_with("unsupported Version \"2020-01-01\""),
        "{err}"
    );
    assert_eq!(parse_err("[]"), "policy document must be a JSON object");
    assert!(parse_err("{").starts_with("invalid policy JSON"));
    let twice = r#"{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}"#;
    let err = parse_err(&format!(r#"{{"Statement":[{twice},{twice}]}}"#));
    assert_eq!(err, "Statement 2: duplicate Sid \"A\"");
    assert!(parse_err(r#"{"Statement":["x"]}"#).starts_with("Statement 1: statement must"));
}

#[test]
fn resource_policy_parse_errors() {
    let parse = |s: &str| Policy::parse_resource(&format!(r#"{{"Statement":{{{s}}}}}"#));
    let message = |s: &str| parse(s).expect_err("rejected").to_string();
    let err = message(r#""Effect":"Allow","Action":"*""#);
    assert_eq!(
        err,
        "Statement 1: exactly one of Principal and NotPrincipal is required"
    );
    let err = message(r#""Effect":"Allow","Principal":{"AWS":"bob"},"Action":"*""#);
    assert!(err.contains("AWS principal \"bob\""), "{err}");
    let err = message(r#""Effect":"Allow","Principal":{"Human":"x"},"Action":"*""#);
    assert!(err.contains("unknown principal type \"Human\""), "{err}");
    assert!(parse(r#""Effect":"Allow","Principal":"*","Action":"*""#).is_ok());
}
