//! A queue's configuration as kept in its `queue.json` (written durably; the queue exists iff
//! the file does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A queue's visibility timeout when CreateQueue gives none.
pub const DEFAULT_VISIBILITY_TIMEOUT_S: u32 = 30;
/// MaxReceiveCount when CreateQueue gives no dead-letter configuration.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartKind {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

impl StartKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TrimHorizon => "TRIM_HORIZON",
            Self::Latest => "LATEST",
            Self::AtTimestamp => "AT_TIMESTAMP",
        }
    }
}

/// Where delivery began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartingPosition {
    pub kind: StartKind,
    /// AT_TIMESTAMP's time as requested.
    pub timestamp_ms: Option<i64>,
}

/// Built-in dead-letter handling, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeadLetter {
    BuiltIn { max_receive_count: u32 },
    None,
}

impl DeadLetter {
    pub fn max_receive_count(&self) -> Option<u32> {
        match self {
            Self::BuiltIn { max_receive_count } => Some(*max_receive_count),
            Self::None => None,
        }
    }
}

impl Default for DeadLetter {
    fn default() -> Self {
        Self::BuiltIn {
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
        }
    }
}

/// The attributes UpdateQueue may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub visibility_timeout_s: u32,
    pub dead_letter: DeadLetter,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            visibility_timeout_s: DEFAULT_VISIBILITY_TIMEOUT_S,
            dead_letter: DeadLetter::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Generated at creation; the queue's ARN ends in it.
    pub id: String,
    pub name: String,
    pub stream: String,
    pub stream_created_ms: i64,
    pub created_ms: i64,
    pub start: StartingPosition,
    /// The earliest arrival time delivery can start at, as resolved at creation.
    pub effective_start_ms: i64,
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What CreateQueue asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueue {
    pub name: String,
    pub stream: String,
    pub start: StartingPosition,
    pub attributes: Attributes,
    pub tags: BTreeMap<String, String>,
}
