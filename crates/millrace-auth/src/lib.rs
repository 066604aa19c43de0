//! Who may call millrace's APIs, and what they may do: the AWS way.
//!
//! - `identities.rs`: the identities file (principals, access keys sealed with AES-256-GCM,
//!   attached IAM policies); `millrace identity add/list`.
//! - `sigv4.rs`: Signature Version 4 verification (header and presigned forms).
//! - `policy/`: IAM policy documents and AWS's evaluation (explicit deny wins; an allow from
//!   an identity or a resource policy is needed).
//! - `audit.rs`: the audit log, one line per denial and per administrative action.
//! - [`Auth`] (here): the three together under a [`Mode`], as each API server calls them:
//!   [`Auth::authenticate`] once per request, [`Auth::authorize`] once the action and resource
//!   are known.
//!
//! Each API maps [`AuthError`] to its wire errors in one place.

mod audit;
mod error;
pub mod identities;
pub mod policy;
pub mod sigv4;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub use audit::{Audit, AuditConfig, Entry, Outcome, log_path};
pub use error::AuthError;
pub use identities::{Identities, IdentitiesError, Principal};
pub use policy::{Decision, Policy, RequestContext};
pub use sigv4::HttpRequest;

/// How requests are checked (`[auth] mode` in millrace.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No checks (the default, allowed on loopback only unless `--insecure`).
    #[default]
    Off,
    /// Every check runs; what would be refused is logged and audited, then allowed.
    Log,
    /// Every check runs and refuses.
    Enforce,
}

/// How often a running server looks for changes to the identities file.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Who sent a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None`: not authenticated (only under [`Mode::Log`]).
    pub principal: Option<Arc<Principal>>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub tls: bool,
}

impl Caller {
    fn arn(&self) -> String {
        self.principal
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), |p| p.arn.clone())
    }
}

/// The identities, their policies and the audit log, under a mode.
#[derive(Debug)]
pub struct Auth {
    mode: Mode,
    account: String,
    region: String,
    path: PathBuf,
    identities: parking_lot::RwLock<Arc<Identities>>,
    /// When the file is next looked at (milliseconds since `started`): requests between
    /// looks read one atomic, not a lock.
    next_look_ms: AtomicU64,
    started: Instant,
    /// The file's modification time when last looked at.
    seen: parking_lot::Mutex<Option<SystemTime>>,
    /// Resource policies parsed, by their text: a stream's policy is parsed once, not on
    /// every request that names the stream.
    resource_policies: parking_lot::Mutex<HashMap<String, Option<Arc<Policy>>>>,
    audit: Audit,
}

/// Resource policies kept parsed at most; past it the cache starts over.
const MAX_CACHED_POLICIES: usize = 1024;

impl Auth {
    /// Loads the identities file at `path` for a server of `account` in `region`; audit lines
    /// go to `audit`.
    pub fn new(
        mode: Mode,
        path: &Path,
        account: &str,
        region: &str,
        audit: Audit,
    ) -> Result<Self, IdentitiesError> {
        let identities = Identities::load(path, account)?;
        Ok(Self {
            mode,
            account: account.to_owned(),
            region: region.to_owned(),
            path: path.to_owned(),
            identities: parking_lot::RwLock::new(Arc::new(identities)),
            next_look_ms: AtomicU64::new(RELOAD_EVERY.as_millis() as u64),
            started: Instant::now(),
            seen: parking_lot::Mutex::new(modified(path)),
            resource_policies: parking_lot::Mutex::new(HashMap::new()),
            audit,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The account principals' and resources' ARNs name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The region requests must be signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// How many principals are loaded now.
    pub fn principal_count(&self) -> usize {
        self.identities.read().principals().len()
    }

    /// The identities as now loaded, re-read if the file changed (an `identity add` while the
    /// server runs). A file that no longer loads keeps the previous identities, and says so.
    fn identities(&self) -> Arc<Identities> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let due = self.next_look_ms.load(Ordering::Relaxed);
        let next = now_ms + RELOAD_EVERY.as_millis() as u64;
        // One request looks; the others go on with what is loaded.
        if now_ms >= due
            && self
                .next_look_ms
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.reload_if_changed();
        }
        self.identities.read().clone()
    }

    /// Re-reads the identities file if its modification time changed.
    fn reload_if_changed(&self) {
        let mut seen = self.seen.lock();
        let now = modified(&self.path);
        if now == *seen {
            return;
        }
        *seen = now;
        match Identities::load(&self.path, &self.account) {
            Ok(ids) => *self.identities.write() = Arc::new(ids),
            Err(e) => tracing::error!(
                error = %e,
                "the identities file changed but does not load; keeping the identities it had"
            ),
        }
    }

    /// The resource policy `text`, parsed once; `None` for one that does not parse (stored
    /// policies were checked when put: one that no longer parses grants nothing).
    fn resource_policy(&self, resource: &str, text: &str) -> Option<Arc<Policy>> {
        if let Some(p) = self.resource_policies.lock().get(text) {
            return p.clone();
        }
        let parsed = match Policy::parse_resource(text) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::warn!(resource, error = %e, "a resource policy does not parse; ignored");
                None
            }
        };
        let mut cache = self.resource_policies.lock();
        if cache.len() >= MAX_CACHED_POLICIES {
            cache.clear();
        }
        cache.insert(text.to_owned(), parsed.clone());
        parsed
    }

    /// Checks the request's signature for `service` (its signing name: `kinesis`,
    /// `firehose`, `sagemaker`). Under [`Mode::Log`] a failure is audited and the request goes
    /// on unauthenticated.
    pub fn authenticate(
        &self,
        req: &HttpRequest,
        service: &str,
        source_ip: Option<IpAddr>,
        tls: bool,
    ) -> Result<Caller, AuthError> {
        let mut caller = Caller {
            principal: None,
            access_key_id: None,
            source_ip,
            tls,
        };
        let result = sigv4::parse(req).and_then(|claim| {
            caller.access_key_id = Some(claim.access_key_id.clone());
            let ids = self.identities();
            let (principal, secret) =
                ids.lookup(&claim.access_key_id)
                    .ok_or_else(|| AuthError::UnknownKey {
                        access_key_id: claim.access_key_id.clone(),
                    })?;
            sigv4::verify(
                req,
                &claim,
                secret,
                service,
                &self.region,
                SystemTime::now(),
            )?;
            Ok(principal.clone())
        });
        match result {
            Ok(p) => {
                caller.principal = Some(p);
                Ok(caller)
            }
            Err(e) => {
                let action = format!("{service}:authenticate");
                self.refuse(&caller, &action, "*", &e)?;
                Ok(caller)
            }
        }
    }

    /// Checks an access key and its secret as typed into a sign-in form (the console's):
    /// the secret compared in constant time with the one stored for the key. Every failure is
    /// the same [`AuthError::BadSignature`] (which of the two was wrong is not said), audited;
    /// it refuses under every mode, since a sign-in that fails signs no one in.
    pub fn sign_in(
        &self,
        access_key_id: &str,
        secret: &str,
        source_ip: Option<IpAddr>,
        tls: bool,
    ) -> Result<Caller, AuthError> {
        use subtle::ConstantTimeEq;
        let ids = self.identities();
        let matched = ids.lookup(access_key_id).and_then(|(principal, stored)| {
            bool::from(stored.as_bytes().ct_eq(secret.as_bytes())).then(|| principal.clone())
        });
        let caller = Caller {
            principal: matched.clone(),
            access_key_id: Some(access_key_id.to_owned()),
            source_ip,
            tls,
        };
        if matched.is_some() {
            return Ok(caller);
        }
        let err = AuthError::BadSignature(
            "The access key ID and secret access key do not match an identity.".into(),
        );
        let reason = format!("{}: {err}", err.aws_code());
        self.audit.record(self.entry(
            &caller,
            "console:SignIn",
            "*",
            Outcome::Denied,
            Some(reason),
        ));
        Err(err)
    }

    /// The caller holding `access_key_id` now (a key removed or deactivated since, or none,
    /// gives an unauthenticated caller, which no policy allows).
    pub fn caller(
        &self,
        access_key_id: Option<&str>,
        source_ip: Option<IpAddr>,
        tls: bool,
    ) -> Caller {
        let ids = self.identities();
        Caller {
            principal: access_key_id
                .and_then(|k| ids.lookup(k))
                .map(|(p, _)| p.clone()),
            access_key_id: access_key_id.map(str::to_owned),
            source_ip,
            tls,
        }
    }

    /// [`Auth::authenticate`] and [`Auth::authorize`] in one, for a server whose action and
    /// resource are known from the request line alone (no resource policy).
    pub fn check(
        &self,
        req: &HttpRequest,
        service: &str,
        source_ip: Option<IpAddr>,
        tls: bool,
        action: &str,
        resource: &str,
    ) -> Result<(), AuthError> {
        let caller = self.authenticate(req, service, source_ip, tls)?;
        self.authorize(&caller, action, resource, None)
    }

    /// Checks that `caller` may perform `action` (`kinesis:DeleteStream`) on `resource` (an
    /// ARN, or `*`), given the resource's own policy if it has one. Administrative actions
    /// that pass are audited too.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        resource_policy: Option<&str>,
    ) -> Result<(), AuthError> {
        let decision = match &caller.principal {
            Some(p) => {
                let policy = resource_policy.and_then(|text| self.resource_policy(resource, text));
                decide(p, caller, action, resource, policy.as_deref())
            }
            None => Decision::ImplicitDeny,
        };
        if decision == Decision::Allow {
            if is_administrative(action) {
                self.audit
                    .record(self.entry(caller, action, resource, Outcome::Allowed, None));
            }
            return Ok(());
        }
        let why = match decision {
            Decision::ExplicitDeny => "with an explicit deny in a policy".to_owned(),
            _ => format!(
                "because no identity-based or resource-based policy allows the {action} action"
            ),
        };
        let err = AuthError::Denied {
            principal: caller.arn(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            why,
        };
        self.refuse(caller, action, resource, &err)
    }

    /// Audits a refusal; an error under [`Mode::Enforce`], allowed under [`Mode::Log`].
    fn refuse(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        err: &AuthError,
    ) -> Result<(), AuthError> {
        let outcome = match self.mode {
            Mode::Enforce => Outcome::Denied,
            _ => Outcome::WouldDeny,
        };
        let reason = format!("{}: {err}", err.aws_code());
        tracing::info!(principal = %caller.arn(), action, resource, ?outcome, %reason, "request refused");
        self.audit
            .record(self.entry(caller, action, resource, outcome, Some(reason)));
        match self.mode {
            Mode::Enforce => Err(err.clone()),
            _ => Ok(()),
        }
    }

    fn entry(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Entry {
        Entry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            outcome,
            principal: caller.arn(),
            access_key_id: caller.access_key_id.clone(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            source_ip: caller.source_ip.map(|ip| ip.to_string()),
            reason,
        }
    }
}

fn decide(
    p: &Principal,
    caller: &Caller,
    action: &str,
    resource: &str,
    resource_policy: Option<&Policy>,
) -> Decision {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let ctx = RequestContext {
        action,
        resource,
        principal_arn: &p.arn,
        account: &p.account,
        username: &p.name,
        source_ip: caller.source_ip,
        secure_transport: caller.tls,
        now_epoch_secs: now,
        extra: &[],
    };
    policy::decide(&p.policies, resource_policy, &ctx)
}

/// Whether an action changes configuration (audited when allowed): anything but reads,
/// record traffic and invocations.
pub fn is_administrative(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, n)| n);
    const DATA_PLANE: [&str; 7] = [
        "Get",
        "List",
        "Describe",
        "Subscribe",
        "PutRecord",
        "Invoke",
        "Receive",
    ];
    !DATA_PLANE.iter().any(|p| name.starts_with(p))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrative_actions_are_the_ones_that_change_things() {
        assert!(is_administrative("kinesis:DeleteStream"));
        assert!(is_administrative("kinesis:PutResourcePolicy"));
        assert!(is_administrative("firehose:CreateDeliveryStream"));
        assert!(!is_administrative("kinesis:PutRecords"));
        assert!(!is_administrative("firehose:PutRecordBatch"));
        assert!(!is_administrative("kinesis:GetRecords"));
        assert!(!is_administrative("sagemaker:InvokeEndpoint"));
    }
}
