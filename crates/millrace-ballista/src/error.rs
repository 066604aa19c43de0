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
    #[error(
        "cluster job {job} finished, but its result could not be read as the scheduler lists \
         it, {attempts} runs in a row; the last time: {problem}. Nothing was read from it: \
         check the executors (`millrace ballista executor`) and run the job again"
    )]
    ResultLost {
        job: String,
        attempts: usize,
        problem: String,
    },
    #[error(
        "reading cluster job {job}'s result from the executors: {message} (an executor may \
         have stopped after the job finished; run the job again)"
    )]
    ResultRead { job: String, message: String },
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
