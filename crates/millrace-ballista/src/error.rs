use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("bad Ballista engine {url:?}: {reason} (expected ballista://HOST:PORT)")]
    BadEngine { url: String, reason: String },
    #[error("bad address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot reach the Ballista scheduler at {addr}: {source} (is `millrace ballista scheduler` running there?)"
    )]
    Unreachable {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Ballista: {0}")]
    Ballista(String),
    #[error(transparent)]
    Prep(#[from] millrace_prep::PrepError),
}

impl ClusterError {
    pub(crate) fn ballista(e: impl std::fmt::Display) -> Self {
        Self::Ballista(e.to_string())
    }
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
