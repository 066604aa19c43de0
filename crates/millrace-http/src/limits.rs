//! [`ServerLimits`]: the bounds one server keeps, their defaults in one place, and the checks
//! that name the offending setting (as a config key or as a flag).

use std::time::Duration;

use crate::host::valid_host_name;

/// What a server holds at most, and for how long. One value per server: `up` gives its three
/// servers the same `[server]` settings; `millrace endpoint` builds one from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time a client has to send a request's headers, counted from the moment the connection
    /// is ready for a request: when it opens, and after each response (so a keep-alive
    /// connection idle this long is closed too).
    pub header_timeout: Duration,
    /// Time a client has to send a request's body once the server starts reading it; past it
    /// the request is answered 408 and the connection closed.
    pub body_timeout: Duration,
    /// Open connections. At the cap a new connection closes the one idle the longest (between
    /// requests, or still sending its first headers); when every one is busy the new one is
    /// answered 503.
    pub max_connections: usize,
    /// Request body bytes the server reads and holds at once, summed over every request: each
    /// request reserves its Content-Length (or the body limit, without one) before its body is
    /// read, and keeps it until its response is ready.
    pub max_inflight_bytes: usize,
    /// How long a request waits for room in `max_inflight_bytes` before it is answered 503.
    pub inflight_wait: Duration,
    /// Host names served besides the loopback ones (localhost, 127.0.0.0/8, [::1]); any port.
    pub allowed_hosts: Vec<String>,
}

pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_MAX_INFLIGHT_MIB: usize = 32;
pub const DEFAULT_INFLIGHT_WAIT: Duration = Duration::from_secs(2);

/// The largest value a timeout may take.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_CONNECTIONS: usize = 65_536;
const MAX_INFLIGHT_MIB: usize = 65_536;

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_MIB << 20,
            inflight_wait: DEFAULT_INFLIGHT_WAIT,
            allowed_hosts: Vec::new(),
        }
    }
}

/// A setting of [`ServerLimits`], named the way a config file or a command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitField {
    HeaderTimeout,
    BodyTimeout,
    MaxConnections,
    MaxInflight,
    AllowedHosts,
}

impl LimitField {
    /// The key in a `[server]` table.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout_secs",
            Self::BodyTimeout => "body_timeout_secs",
            Self::MaxConnections => "max_connections",
            Self::MaxInflight => "max_inflight_mb",
            Self::AllowedHosts => "allowed_hosts",
        }
    }

    /// The command-line flag.
    pub fn flag(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "--header-timeout",
            Self::BodyTimeout => "--body-timeout",
            Self::MaxConnections => "--max-connections",
            Self::MaxInflight => "--max-inflight-mb",
            Self::AllowedHosts => "--allowed-host",
        }
    }
}

/// A limit out of its range: which one, the value given and the rule it breaks.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} = {value}: {rule}", field.config_key())]
pub struct InvalidLimit {
    pub field: LimitField,
    pub value: String,
    pub rule: String,
}

impl InvalidLimit {
    /// The message with the key as a config file names it under `section` (`server.max_connections = 0: …`).
    pub fn in_config(&self, section: &str) -> String {
        format!(
            "{section}.{} = {}: {}",
            self.field.config_key(),
            self.value,
            self.rule
        )
    }

    /// The message with the flag (`--max-connections 0: …`).
    pub fn as_flag(&self) -> String {
        format!("{} {}: {}", self.field.flag(), self.value, self.rule)
    }
}

impl ServerLimits {
    /// Every limit within its range and every allowed host a host name.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        let bad = |field, value: String, rule: &str| {
            Err(InvalidLimit {
                field,
                value,
                rule: rule.to_owned(),
            })
        };
        for (field, d) in [
            (LimitField::HeaderTimeout, self.header_timeout),
            (LimitField::BodyTimeout, self.body_timeout),
        ] {
            if d.is_zero() || d > MAX_TIMEOUT {
                return bad(
                    field,
                    d.as_secs_f64().to_string(),
                    "must be more than 0 and at most 3600 seconds",
                );
            }
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return bad(
                LimitField::MaxConnections,
                self.max_connections.to_string(),
                &format!("must be between 1 and {MAX_CONNECTIONS}"),
            );
        }
        let mib = self.max_inflight_bytes >> 20;
        if !self.max_inflight_bytes.is_multiple_of(1 << 20)
            || !(1..=MAX_INFLIGHT_MIB).contains(&mib)
        {
            return bad(
                LimitField::MaxInflight,
                mib.to_string(),
                &format!("must be between 1 and {MAX_INFLIGHT_MIB} (MiB)"),
            );
        }
        for h in &self.allowed_hosts {
            if !valid_host_name(h) {
                return bad(
                    LimitField::AllowedHosts,
                    format!("{h:?}"),
                    "not a host name: letters, digits, '-' and '.', an IPv4 address or an \
                     IPv6 address in brackets, without a port",
                );
            }
        }
        Ok(())
    }

    /// `max_inflight_bytes` from MiB, as config files and flags give it.
    pub fn with_inflight_mib(mut self, mib: usize) -> Self {
        self.max_inflight_bytes = mib.saturating_mul(1 << 20);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ServerLimits::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_key_and_the_flag() {
        let limits = ServerLimits {
            max_connections: 0,
            ..Default::default()
        };
        let e = limits.validate().unwrap_err();
        assert_eq!(
            e.in_config("server"),
            "server.max_connections = 0: must be between 1 and 65536"
        );
        assert_eq!(
            e.as_flag(),
            "--max-connections 0: must be between 1 and 65536"
        );
        let limits = ServerLimits {
            allowed_hosts: vec!["a b".into()],
            ..Default::default()
        };
        let e = limits.validate().unwrap_err();
        assert!(
            e.in_config("server")
                .starts_with("server.allowed_hosts = \"a b\"")
        );
        let limits = ServerLimits {
            header_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(
            limits.validate().unwrap_err().field,
            LimitField::HeaderTimeout
        );
        let limits = ServerLimits::default().with_inflight_mib(0);
        assert_eq!(
            limits.validate().unwrap_err().field,
            LimitField::MaxInflight
        );
    }
}
