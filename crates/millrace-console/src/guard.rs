//! Cross-site request forgery: a page on another site can make a visitor's browser post a form
//! to the console on 127.0.0.1 (promote a model, score a file). Every request that changes or
//! computes something (anything but GET and HEAD) must come from the console's own pages:
//! browsers say where a request comes from in `Sec-Fetch-Site` and `Origin`, and a page cannot
//! forge either. Clients that send neither (curl, scripts) are not browsers and cannot be
//! tricked into posting, so they pass.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses a cross-site post with 403 and says why.
pub async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    match cross_site(request.headers()) {
        None => next.run(request).await,
        Some(why) => (
            StatusCode::FORBIDDEN,
            format!("refused: {why}; the console accepts forms only from its own pages"),
        )
            .into_response(),
    }
}

/// Why the request's headers show it came from another site, or `None`.
pub fn cross_site(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        // `none`: typed in the address bar or a bookmark; `same-origin`: our own page.
        return (!matches!(site, "same-origin" | "none"))
            .then(|| format!("the request came from a {site} page"));
    }
    let origin = text(header::ORIGIN.as_str())?;
    let host = text(header::HOST.as_str()).unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    (origin_host != host).then(|| format!("the request came from {origin}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_the_consoles_own_pages_may_post() {
        assert_eq!(cross_site(&headers(&[])), None, "curl sends neither");
        assert_eq!(
            cross_site(&headers(&[("sec-fetch-site", "same-origin")])),
            None
        );
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])).is_some());
        let ok = [
            ("origin", "http://127.0.0.1:4590"),
            ("host", "127.0.0.1:4590"),
        ];
        assert_eq!(cross_site(&headers(&ok)), None);
        let evil = [
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:4590"),
        ];
        assert!(
            cross_site(&headers(&evil))
                .unwrap()
                .contains("evil.example")
        );
        assert!(cross_site(&headers(&[("origin", "null"), ("host", "127.0.0.1:4590")])).is_some());
    }
}
