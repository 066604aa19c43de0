//! Sign-in, sessions and each page's permission, when the running millrace checks identities
//! (`[auth] mode = "log"` or `"enforce"`).
//!
//! - **Sign-in** (`/signin`): an access key ID and its secret access key, as `millrace identity
//!   add` printed them. The [`Gate`] (the binary's, over `millrace-auth`) compares the secret in
//!   constant time and audits a failure.
//! - **Session**: 32 random bytes in the `millrace_console` cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Secure` over TLS, 12 hours), kept in this process only: a restart signs
//!   everyone out. The identity is looked up again on every request, so a key removed from the
//!   identities file stops working at once.
//! - **Forgery**: every form carries the session's own token in its action (`?csrf=`), checked
//!   before the body is read (uploads too), on top of the same-origin check of `guard.rs`.
//! - **Permissions**: each page and action is an IAM action on a resource ([`permission`]),
//!   allowed by the identity's policies or refused with 403 naming both. Under `log`, nobody
//!   needs to sign in and refusals are only logged, as on the APIs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use crate::pages::{error, page};

/// The session cookie's name.
const COOKIE: &str = "millrace_console";
/// How long a session lasts from sign-in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past it, the oldest is signed out.
const MOST_SESSIONS: usize = 10_000;
/// Where the signed-in line goes in every page (`base.html`'s header).
const MARKER: &str = "<!--session-->";
/// HTML pages rewritten for the marker at most (larger bodies pass as they are).
const MOST_REWRITTEN: usize = 8 << 20;

/// What a resource of a console page is, before the binary makes it an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `*`.
    Any,
    /// A stream, by name.
    Stream(String),
    /// A bucket (`arn:aws:s3:::NAME`): `lake` is the data dir's lake.
    Bucket(String),
    /// An object of a bucket, by key (`*` for every one).
    Object(String, String),
    /// A model of the registry, by name.
    Model(String),
    /// A model as served (what-if and batch predictions), by name.
    Endpoint(String),
}

/// Who is calling, from the server's connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub tls: bool,
}

/// The running millrace's identities, as the console asks them.
pub trait Gate: Send + Sync + 'static {
    /// `true` under `enforce`; under `log` nobody must sign in and refusals only log.
    fn enforcing(&self) -> bool;
    /// The name of the identity holding `access_key_id` if `secret` is its secret, or why not.
    fn sign_in(&self, access_key_id: &str, secret: &str, client: Client) -> Result<String, String>;
    /// Whether the identity holding `access_key_id` (`None`: nobody signed in) may do
    /// `action` on `resource`: `Err` with AWS's wording when refused (never under `log`).
    fn allowed(
        &self,
        access_key_id: Option<&str>,
        action: &str,
        resource: &Resource,
        client: Client,
    ) -> Result<(), String>;
}

/// A signed-in browser, as the pages see it.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The identity's name.
    pub name: String,
    pub access_key_id: String,
    /// What each of its forms must send back in `?csrf=`.
    pub csrf: String,
    expires: Option<Instant>,
}

/// The sessions and the gate; `None` in the router when identities are off.
pub struct Keeper {
    gate: Arc<dyn Gate>,
    sessions: Mutex<HashMap<String, Session>>,
}

pub type SharedKeeper = Option<Arc<Keeper>>;

impl Keeper {
    pub fn new(gate: Arc<dyn Gate>) -> Keeper {
        Keeper {
            gate,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `name`: its cookie value.
    fn open(&self, name: String, access_key_id: String) -> String {
        let token = hex(&rand::random::<[u8; 32]>());
        let session = Session {
            name,
            access_key_id,
            csrf: hex(&rand::random::<[u8; 32]>()),
            expires: Some(Instant::now() + LIFETIME),
        };
        let mut all = self.sessions();
        let now = Instant::now();
        all.retain(|_, s| s.expires.is_some_and(|e| e > now));
        if all.len() >= MOST_SESSIONS
            && let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            all.remove(&oldest);
        }
        all.insert(token.clone(), session);
        token
    }

    /// The live session of a request's cookie.
    fn find(&self, headers: &axum::http::HeaderMap) -> Option<(String, Session)> {
        let token = cookie(headers)?;
        let mut all = self.sessions();
        match all.get(&token) {
            Some(s) if s.expires.is_some_and(|e| e > Instant::now()) => Some((token, s.clone())),
            Some(_) => {
                all.remove(&token);
                None
            }
            None => None,
        }
    }
}

fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The IAM action and resource a request of the console needs.
pub fn permission(method: &Method, path: &str, query: &str) -> (&'static str, Resource) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let post = method == Method::POST;
    let name = |i: usize| parts.get(i).map_or(String::new(), |s| (*s).to_owned());
    match parts.as_slice() {
        ["streams"] => ("kinesis:ListStreams", Resource::Any),
        ["streams", s] if param("shard").is_some() => {
            ("kinesis:GetRecords", Resource::Stream((*s).to_owned()))
        }
        ["streams", s] => ("kinesis:DescribeStream", Resource::Stream((*s).to_owned())),
        ["lake"] => {
            let (bucket, _) = bucket_and_key(&param("prefix").unwrap_or_default());
            ("s3:ListBucket", Resource::Bucket(bucket))
        }
        ["lake", "object"] => {
            let (bucket, key) = bucket_and_key(&param("key").unwrap_or_default());
            ("s3:GetObject", Resource::Object(bucket, key))
        }
        ["sql"] | ["quality", ..] if !post => ("s3:GetObject", lake_objects()),
        ["quality"] => ("sagemaker:CreateProcessingJob", Resource::Any),
        ["train"] if post => ("sagemaker:CreateAutoMLJob", Resource::Any),
        ["train", ..] => ("sagemaker:DescribeAutoMLJob", Resource::Any),
        ["models"] => ("sagemaker:ListModels", Resource::Any),
        ["models", _, "predict"] | ["models", _, _, "predict"] => {
            ("sagemaker:InvokeEndpoint", Resource::Endpoint(name(1)))
        }
        ["models", _, "promote" | "rollback"] if post => {
            ("sagemaker:UpdateModelPackage", Resource::Model(name(1)))
        }
        ["models", ..] => ("sagemaker:DescribeModel", Resource::Model(name(1))),
        _ => ("millrace:GetStatus", Resource::Any),
    }
}

/// The bucket and key of a lake page's prefix or key: an S3 lake's `s3://bucket/key`, or a
/// key of the data dir's lake (bucket `lake`).
fn bucket_and_key(at: &str) -> (String, String) {
    match at.strip_prefix("s3://") {
        Some(rest) => {
            let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
            (b.to_owned(), k.to_owned())
        }
        None => ("lake".to_owned(), at.to_owned()),
    }
}

fn lake_objects() -> Resource {
    Resource::Object("lake".into(), "*".into())
}

/// Pages anyone may open: the sign-in page, and what every page loads.
fn open_path(path: &str) -> bool {
    path == "/signin" || path.starts_with("/static/")
}

/// The token a page's forms send back: the session's (empty when identities are off).
pub(crate) fn csrf(session: &Option<Extension<Session>>) -> String {
    session
        .as_ref()
        .map_or_else(String::new, |s| s.csrf.clone())
}

/// The middleware every console request passes when identities are on.
pub async fn check(
    axum::extract::State(keeper): axum::extract::State<SharedKeeper>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(keeper) = keeper else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    if open_path(&path) {
        return next.run(request).await;
    }
    let client = client_of(&request);
    let found = keeper.find(request.headers());
    let session = match found {
        Some((_, s)) => Some(s),
        None if keeper.gate.enforcing() => {
            if matches!(*request.method(), Method::GET | Method::HEAD) {
                let next_page = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let q: String =
                    url::form_urlencoded::byte_serialize(next_page.as_bytes()).collect();
                return Redirect::to(&format!("/signin?next={q}")).into_response();
            }
            return error(
                StatusCode::UNAUTHORIZED,
                "Sign in first",
                "This console checks identities: sign in, then send the form again.".into(),
            );
        }
        None => None,
    };
    let query = request.uri().query().unwrap_or("").to_owned();
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let sent = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        let wanted = session.as_ref().map(|s| s.csrf.as_str());
        let ok = match (wanted, sent.as_deref()) {
            (Some(w), Some(s)) => {
                use subtle::ConstantTimeEq;
                bool::from(w.as_bytes().ct_eq(s.as_bytes()))
            }
            // Nobody signed in (`log` mode): there is no session to forge a request for.
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !ok {
            return error(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form is not from your session (it is stale, or from another site): \
                 reload the page and send it again."
                    .into(),
            );
        }
    }
    let (action, resource) = permission(request.method(), &path, &query);
    let key = session.as_ref().map(|s| s.access_key_id.as_str());
    let refused = match path.as_str() {
        "/signout" => None,
        _ => keeper.gate.allowed(key, action, &resource, client).err(),
    };
    let signed_in = session.clone();
    let response = match refused {
        // Refused pages keep the signed-in line, so the way out is on them too.
        Some(why) => error(StatusCode::FORBIDDEN, "Access denied", why),
        None => {
            request.extensions_mut().insert(session.unwrap_or_default());
            next.run(request).await
        }
    };
    match signed_in {
        Some(s) => with_session_line(response, &s).await,
        None => response,
    }
}

fn client_of(request: &Request) -> Client {
    request
        .extensions()
        .get::<millrace_http::Client>()
        .map_or_else(Client::default, |c| Client {
            ip: Some(c.addr.ip()),
            tls: c.tls,
        })
}

/// Puts "signed in as NAME · Sign out" into an HTML page's header.
async fn with_session_line(response: Response, s: &Session) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    // A page of unknown or large size (a big query result) passes as it is, without the line.
    let size = axum::body::HttpBody::size_hint(response.body()).exact();
    if !html || size.is_none_or(|n| n > MOST_REWRITTEN as u64) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MOST_REWRITTEN).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page too large").into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let line = format!(
        r#"<span class="who">signed in as {}</span> <a href="/signout">Sign out</a>"#,
        escape_html(&s.name)
    );
    let out = text.replacen(MARKER, &line, 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    title: &'static str,
    next: String,
    problem: Option<String>,
    /// Identities are off: nothing to sign in to.
    off: bool,
}

#[derive(Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
}

/// A page of the console to go to after sign-in: a local path, never another site.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// `GET /signin`.
pub(crate) async fn sign_in_page(
    Extension(keeper): Extension<SharedKeeper>,
    Query(q): Query<SignInQuery>,
) -> Response {
    page(SignInPage {
        title: "Sign in",
        next: local(q.next.as_deref()),
        problem: None,
        off: keeper.is_none(),
    })
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
    next: Option<String>,
}

/// `POST /signin`: a session, then the page asked for; or the form again with why not.
pub(crate) async fn sign_in(
    Extension(keeper): Extension<SharedKeeper>,
    request: Request,
) -> Response {
    let client = client_of(&request);
    let Ok(Form(form)) = Form::<SignInForm>::from_request(request, &()).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "Cannot do that",
            "The sign-in form did not come as a form.".into(),
        );
    };
    let next = local(form.next.as_deref());
    let Some(keeper) = keeper else {
        return Redirect::to(&next).into_response();
    };
    let key = form.access_key_id.trim().to_owned();
    let gate = keeper.gate.clone();
    let secret = form.secret_access_key;
    let checked = tokio::task::spawn_blocking(move || {
        gate.sign_in(&key, &secret, client).map(|name| (name, key))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the sign-in failed: {e}")));
    match checked {
        Ok((name, key)) => {
            let token = keeper.open(name, key);
            let secure = if client.tls { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                LIFETIME.as_secs()
            );
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(why) => {
            let mut r = page(SignInPage {
                title: "Sign in",
                next,
                problem: Some(why),
                off: false,
            });
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
    }
}

#[derive(Template)]
#[template(path = "signout.html")]
struct SignOutPage {
    title: &'static str,
    name: String,
    csrf: String,
}

/// `GET /signout`: the button that signs out (a post, so a link elsewhere cannot).
pub(crate) async fn sign_out_page(session: Option<Extension<Session>>) -> Response {
    let Extension(session) = session.unwrap_or_default();
    page(SignOutPage {
        title: "Sign out",
        name: session.name,
        csrf: session.csrf,
    })
}

/// `POST /signout`: the session ends, here and in the browser.
pub(crate) async fn sign_out(
    Extension(keeper): Extension<SharedKeeper>,
    request: Request,
) -> Response {
    if let Some(k) = &keeper
        && let Some((token, _)) = k.find(request.headers())
    {
        k.sessions().remove(&token);
    }
    let mut r = Redirect::to("/signin").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("millrace_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_and_action_needs_its_permission() {
        let get = |p: &str, q: &str| permission(&Method::GET, p, q);
        let post = |p: &str| permission(&Method::POST, p, "csrf=x");
        assert_eq!(get("/", ""), ("millrace:GetStatus", Resource::Any));
        assert_eq!(get("/events", ""), ("millrace:GetStatus", Resource::Any));
        assert_eq!(
            get("/monitor/churn", ""),
            ("millrace:GetStatus", Resource::Any)
        );
        assert_eq!(get("/streams", ""), ("kinesis:ListStreams", Resource::Any));
        assert_eq!(
            get("/streams/churn", ""),
            ("kinesis:DescribeStream", Resource::Stream("churn".into()))
        );
        assert_eq!(
            get("/streams/churn", "shard=shardId-000000000000&last=5"),
            ("kinesis:GetRecords", Resource::Stream("churn".into()))
        );
        let lake = |k: &str| Resource::Object("lake".into(), k.into());
        assert_eq!(
            get("/lake", "prefix=raw%2F"),
            ("s3:ListBucket", Resource::Bucket("lake".into()))
        );
        assert_eq!(
            get("/lake/object", "key=raw%2Fa.json"),
            ("s3:GetObject", lake("raw/a.json"))
        );
        assert_eq!(
            get("/lake", "prefix=s3%3A%2F%2Fbkt%2Fdata%2F"),
            ("s3:ListBucket", Resource::Bucket("bkt".into()))
        );
        assert_eq!(
            get("/lake/object", "key=s3%3A%2F%2Fbkt%2Fdata%2Fa.json"),
            (
                "s3:GetObject",
                Resource::Object("bkt".into(), "data/a.json".into())
            )
        );
        assert_eq!(get("/sql", "q=SELECT+1"), ("s3:GetObject", lake("*")));
        assert_eq!(get("/quality/1-0", ""), ("s3:GetObject", lake("*")));
        assert_eq!(
            post("/quality"),
            ("sagemaker:CreateProcessingJob", Resource::Any)
        );
        assert_eq!(post("/train"), ("sagemaker:CreateAutoMLJob", Resource::Any));
        assert_eq!(
            get("/train/new", ""),
            ("sagemaker:DescribeAutoMLJob", Resource::Any)
        );
        assert_eq!(get("/models", ""), ("sagemaker:ListModels", Resource::Any));
        assert_eq!(
            get("/models/churn/v2", ""),
            ("sagemaker:DescribeModel", Resource::Model("churn".into()))
        );
        assert_eq!(
            get("/models/churn/v2/predict", "Contract=Two+year"),
            (
                "sagemaker:InvokeEndpoint",
                Resource::Endpoint("churn".into())
            )
        );
        assert_eq!(
            post("/models/churn/v2/predict"),
            (
                "sagemaker:InvokeEndpoint",
                Resource::Endpoint("churn".into())
            )
        );
        assert_eq!(
            post("/models/churn/promote"),
            (
                "sagemaker:UpdateModelPackage",
                Resource::Model("churn".into())
            )
        );
        assert_eq!(
            post("/models/churn/rollback"),
            (
                "sagemaker:UpdateModelPackage",
                Resource::Model("churn".into())
            )
        );
    }

    #[test]
    fn after_sign_in_only_a_page_of_the_console_is_opened() {
        assert_eq!(local(Some("/models/churn?x=1")), "/models/churn?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(local(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local(None), "/");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; millrace_console=abc; b=2"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        let mut h = axum::http::HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("millrace_console_x=1"),
        );
        assert_eq!(cookie(&h), None);
    }
}
