//! The warning for a server reachable beyond this machine without authentication (`[auth]`
//! off, or a server that does not check signatures yet: the endpoint, the admin API): anyone
//! who can reach the port can read and write every stream, or call the model. Binding there
//! is allowed (a trusted network, a container; `up --insecure` for the Kinesis API) but never
//! silent.

use std::net::SocketAddr;

/// The warning for `what` listening on `addr`, or `None` when `addr` is loopback.
pub fn exposure_warning(what: &str, addr: SocketAddr) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "WARNING: {what} listens on {addr}, beyond loopback, and has no authentication: anyone \
         who can reach this address can use it. Bind to 127.0.0.1 unless the network is \
         trusted. Requests must still name an allowed Host (loopback names, the bound address, \
         or the allowed hosts)."
    ))
}

/// Logs the warning (at `warn`) and prints it on stderr, so it shows whatever the log filter.
pub fn warn_if_exposed(what: &str, addr: SocketAddr) {
    if let Some(warning) = exposure_warning(what, addr) {
        tracing::warn!(server = what, %addr, "listening beyond loopback without authentication");
        eprintln!("millrace: {warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_loopback_addresses_warn() {
        assert!(exposure_warning("x", "127.0.0.1:1".parse().unwrap()).is_none());
        assert!(exposure_warning("x", "[::1]:1".parse().unwrap()).is_none());
        let w = exposure_warning("the Kinesis API", "0.0.0.0:4567".parse().unwrap()).unwrap();
        assert!(
            w.contains("0.0.0.0:4567") && w.contains("no authentication"),
            "{w}"
        );
        assert!(exposure_warning("x", "[::]:1".parse().unwrap()).is_some());
    }
}
