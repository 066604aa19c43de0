//! Which `Host` a request may name. A web page can make a browser send requests to a loopback
//! port under the page's own host name once that name resolves to 127.0.0.1 (DNS rebinding);
//! refusing every name but the loopback ones and those the operator configured closes that
//! door. A request whose target is in absolute form (`POST http://name/ HTTP/1.1`) is checked
//! on that name too.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};

use crate::refusal::Refusal;

/// The names a server answers to: the loopback names, the configured ones, and the address it
/// is bound to when that is one specific address (an IP literal cannot be rebound).
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    /// `configured` plus `bound`'s IP when it is neither loopback nor unspecified.
    pub fn new(configured: &[String], bound: Option<SocketAddr>) -> Self {
        let mut names: Vec<String> = configured.iter().map(|h| h.to_ascii_lowercase()).collect();
        if let Some(addr) = bound
            && !addr.ip().is_unspecified()
            && !addr.ip().is_loopback()
        {
            names.push(match addr.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        Self { names }
    }

    /// `Ok` when the request names an allowed host; the refusal to answer otherwise.
    pub fn check(&self, parts: &Parts) -> Result<(), Refusal> {
        self.check_parts(&parts.headers, &parts.uri)
    }

    fn check_parts(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Refusal> {
        let header = headers.get(header::HOST);
        let authority = uri.authority().map(|a| a.as_str());
        if header.is_none() && authority.is_none() {
            return Err(Refusal::MissingHost);
        }
        if let Some(value) = header {
            let value = value.to_str().map_err(|_| Refusal::HostNotAllowed {
                host: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })?;
            self.check_one(value)?;
        }
        if let Some(value) = authority {
            self.check_one(value)?;
        }
        Ok(())
    }

    fn check_one(&self, value: &str) -> Result<(), Refusal> {
        let allowed = host_part(value).is_some_and(|host| {
            is_loopback_name(host) || self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
        });
        if allowed {
            Ok(())
        } else {
            Err(Refusal::HostNotAllowed {
                host: value.to_owned(),
            })
        }
    }
}

/// The host of a `Host` value without its port (`[::1]` keeps its brackets); `None` when the
/// value is not `host[:port]`. A value with user info (`a@b`) is not a host.
fn host_part(value: &str) -> Option<&str> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (port_ok && valid_host_name(host)).then_some(host)
}

/// localhost, 127.0.0.0/8 and [::1].
fn is_loopback_name(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A DNS name or IPv4 address (letters, digits, `-`, `.`), or an IPv6 address in brackets.
pub(crate) fn valid_host_name(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &AllowedHosts, host: Option<&str>, uri: &str) -> Result<(), Refusal> {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(header::HOST, h.parse().unwrap());
        }
        allowed.check_parts(&headers, &uri.parse().unwrap())
    }

    #[test]
    fn loopback_names_with_any_port_pass() {
        let a = AllowedHosts::new(&[], None);
        for h in [
            "localhost",
            "LOCALHOST:4567",
            "127.0.0.1",
            "127.0.0.1:80",
            "127.1.2.3:9",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(check(&a, Some(h), "/").is_ok(), "{h}");
        }
    }

    #[test]
    fn other_names_are_refused_unless_configured() {
        let a = AllowedHosts::new(&[], None);
        for h in [
            "evil.example",
            "evil.example:4567",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "localhost:abc",
            "user@localhost",
            "",
        ] {
            assert!(
                matches!(check(&a, Some(h), "/"), Err(Refusal::HostNotAllowed { .. })),
                "{h}"
            );
        }
        let a = AllowedHosts::new(&["Stream.Internal".into()], None);
        assert!(check(&a, Some("stream.internal:4567"), "/").is_ok());
        assert!(check(&a, Some("evil.example"), "/").is_err());
    }

    #[test]
    fn the_bound_address_is_allowed_when_specific() {
        let a = AllowedHosts::new(&[], Some("10.1.2.3:4567".parse().unwrap()));
        assert!(check(&a, Some("10.1.2.3:4567"), "/").is_ok());
        let a = AllowedHosts::new(&[], Some("0.0.0.0:4567".parse().unwrap()));
        assert!(check(&a, Some("0.0.0.0:4567"), "/").is_err());
    }

    #[test]
    fn a_missing_host_and_an_absolute_target_are_checked() {
        let a = AllowedHosts::new(&[], None);
        assert!(matches!(check(&a, None, "/"), Err(Refusal::MissingHost)));
        assert!(check(&a, None, "http://localhost:1/x").is_ok());
        assert!(check(&a, Some("localhost"), "http://evil.example/x").is_err());
    }
}
