//! Where prep jobs and queries run: `local` (this process) or `ballista://HOST:PORT` (a
//! Ballista cluster of `millrace ballista` processes). One parser for `--engine` and
//! `[[prep]] engine`.

use anyhow::Context;
use datafusion::prelude::SessionContext;
use millrace_prep::EngineOptions;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Engine {
    #[default]
    Local,
    /// The scheduler's `ballista://HOST:PORT`.
    Ballista(String),
}

impl Engine {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.is_empty() || text == "local" {
            return Ok(Self::Local);
        }
        millrace_ballista::scheduler_of(text)?;
        Ok(Self::Ballista(text.to_owned()))
    }

    /// Whether the scans run in other processes.
    pub fn distributed(&self) -> bool {
        matches!(self, Self::Ballista(_))
    }

    /// A session on this engine.
    pub async fn context(&self, opts: &EngineOptions) -> anyhow::Result<SessionContext> {
        match self {
            Self::Local => Ok(millrace_prep::context(opts)?),
            Self::Ballista(url) => millrace_ballista::context(url, opts)
                .await
                .with_context(|| format!("connecting to {url}")),
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Ballista(url) => f.write_str(url),
        }
    }
}

/// `--engine` values for clap.
pub fn parse_flag(text: &str) -> Result<Engine, String> {
    Engine::parse(text).map_err(|e| e.to_string())
}
