//! Every queue of a store: created, found by id, listed, updated and deleted.
//!
//! A queue's folder is `<stream folder>/queues/<id>/`, beside the shard logs, holding
//! `queue.json` (its configuration) and `state.log` (its delivery state). Creation writes the
//! journal with the starting cursors first and `queue.json` last, so a queue exists iff its
//! `queue.json` does; deletion removes `queue.json` first. A folder without one is a creation
//! or deletion that did not finish, removed at open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use millrace_stream::{Store, StreamHandle, StreamMode, now_ms};
use parking_lot::{Mutex, RwLock};
use rand::Rng;

use crate::config::{Attributes, NewQueue, QueueConfig, StartKind};
use crate::error::{IoAt, QueueError, Result};
use crate::handle::HandleCodec;
use crate::journal::Journal;
use crate::queue::Queue;
use crate::state::Event;

const CONFIG_FILE: &str = "queue.json";
const QUEUES_DIR: &str = "queues";

/// The queues of a store.
pub struct Queues {
    store: Arc<Store>,
    codec: HandleCodec,
    queues: RwLock<BTreeMap<String, Arc<Queue>>>,
    /// Serialises create, update and delete (name uniqueness, files).
    admin: Mutex<()>,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("count", &self.queues.read().len())
            .finish()
    }
}

fn queues_dir(stream: &StreamHandle) -> PathBuf {
    stream.dir().join(QUEUES_DIR)
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Acknowledgements follow the store's durability: fsynced unless `fsync = "never"`.
fn skip_sync(store: &Store) -> bool {
    store.options().fsync == millrace_stream::FsyncPolicy::Never
}

fn write_config(dir: &Path, config: &QueueConfig) -> Result<()> {
    let path = dir.join(CONFIG_FILE);
    let bytes = serde_json::to_vec_pretty(config).expect("a queue config serialises");
    millrace_common::durable::write_file(&path, &bytes).at(&path)
}

fn read_config(dir: &Path) -> Result<QueueConfig> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).at(&path)?;
    serde_json::from_slice(&bytes).map_err(|e| QueueError::Corrupt {
        path,
        reason: e.to_string(),
    })
}

impl Queues {
    /// Opens every queue of every stream in `store`; receipt handles are signed with `key`.
    /// Blocking (reads and replays each journal).
    pub fn open(store: Arc<Store>, key: [u8; 32]) -> Result<Self> {
        let codec = HandleCodec::new(key);
        let mut queues = BTreeMap::new();
        for summary in store.list() {
            let stream = store.stream(&summary.name)?;
            let dir = queues_dir(&stream);
            if !dir.exists() {
                continue;
            }
            for entry in std::fs::read_dir(&dir).at(&dir)? {
                let path = entry.at(&dir)?.path();
                if !path.is_dir() {
                    continue;
                }
                if !path.join(CONFIG_FILE).exists() {
                    tracing::warn!(dir = %path.display(), "removing a queue whose creation or deletion did not finish");
                    std::fs::remove_dir_all(&path).at(&path)?;
                    continue;
                }
                let config = read_config(&path)?;
                let queue = Queue::open(
                    path,
                    config,
                    stream.clone(),
                    codec.clone(),
                    skip_sync(&store),
                )?;
                queues.insert(queue.id(), Arc::new(queue));
            }
        }
        Ok(Self {
            store,
            codec,
            queues: RwLock::new(queues),
            admin: Mutex::new(()),
        })
    }

    pub fn get(&self, id: &str) -> Result<Arc<Queue>> {
        self.queues
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| QueueError::NotFound(id.to_owned()))
    }

    /// Every queue, by name.
    pub fn list(&self) -> Vec<Arc<Queue>> {
        let mut all: Vec<_> = self.queues.read().values().cloned().collect();
        all.sort_by_cached_key(|q| q.config().name);
        all
    }

    /// The queues reading `stream`.
    pub fn on_stream(&self, stream: &str) -> usize {
        self.queues
            .read()
            .values()
            .filter(|q| q.config().stream == stream)
            .count()
    }

    /// Creates a queue. `max_readers` bounds the stream's enhanced fan-out consumers and
    /// queues together (a queue counts as a registered consumer). Blocking.
    pub fn create(&self, new: NewQueue, max_readers: usize) -> Result<Arc<Queue>> {
        let _admin = self.admin.lock();
        if let Some(q) = self
            .list()
            .into_iter()
            .find(|q| q.config().name == new.name)
        {
            return Err(QueueError::NameInUse {
                name: new.name,
                id: q.id(),
            });
        }
        let stream = self.store.stream(&new.stream)?;
        let meta = stream.meta();
        if meta.mode != StreamMode::OnDemand {
            return Err(QueueError::Invalid(format!(
                "Queues are supported only on data streams in on-demand capacity mode; stream {} is {}.",
                new.stream,
                meta.mode.as_str()
            )));
        }
        if meta.consumers.len() + self.on_stream(&new.stream) >= max_readers {
            return Err(QueueError::LimitExceeded(format!(
                "Stream {} has {} registered consumers and queues, the most it may have.",
                new.stream, max_readers
            )));
        }
        let now = now_ms();
        let (cursors, effective_start_ms) = starting_cursors(&stream, &new, now)?;
        let id = new_id();
        let dir = queues_dir(&stream).join(&id);
        std::fs::create_dir_all(&dir).at(&dir)?;
        Journal::create(&dir, &cursors)?;
        let config = QueueConfig {
            id: id.clone(),
            name: new.name,
            stream: new.stream,
            stream_created_ms: stream.created_ms(),
            created_ms: now,
            start: new.start,
            effective_start_ms,
            attributes: new.attributes,
            tags: new.tags,
        };
        write_config(&dir, &config)?;
        let parent = queues_dir(&stream);
        millrace_common::durable::sync_dir(&parent).at(&parent)?;
        let queue = Arc::new(Queue::open(
            dir,
            config,
            stream,
            self.codec.clone(),
            skip_sync(&self.store),
        )?);
        self.queues.write().insert(id, queue.clone());
        Ok(queue)
    }

    /// Replaces a queue's attributes (durably). Blocking.
    pub fn update(&self, id: &str, attributes: Attributes) -> Result<QueueConfig> {
        let _admin = self.admin.lock();
        let queue = self.get(id)?;
        let mut config = queue.config();
        config.attributes = attributes;
        write_config(queue.dir(), &config)?;
        queue.set_config(config.clone());
        Ok(config)
    }

    /// Replaces a queue's tags (durably). Blocking.
    pub fn set_tags(&self, id: &str, tags: BTreeMap<String, String>) -> Result<QueueConfig> {
        let _admin = self.admin.lock();
        let queue = self.get(id)?;
        let mut config = queue.config();
        config.tags = tags;
        write_config(queue.dir(), &config)?;
        queue.set_config(config.clone());
        Ok(config)
    }

    /// Deletes a queue: its receipt handles stop being valid and waiting receives end.
    /// Blocking.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _admin = self.admin.lock();
        let queue = self
            .queues
            .write()
            .remove(id)
            .ok_or_else(|| QueueError::NotFound(id.to_owned()))?;
        queue.mark_deleted();
        let config = queue.dir().join(CONFIG_FILE);
        std::fs::remove_file(&config).at(&config)?;
        millrace_common::durable::sync_dir(queue.dir()).at(queue.dir())?;
        // Best effort: a folder left without queue.json is removed at the next open.
        if let Err(e) = std::fs::remove_dir_all(queue.dir()) {
            tracing::warn!(error = %e, "could not remove {}", queue.dir().display());
        }
        Ok(())
    }
}

/// Each shard's first counter to deliver, and the earliest arrival time delivered.
fn starting_cursors(stream: &StreamHandle, new: &NewQueue, now: i64) -> Result<(Vec<Event>, i64)> {
    let shards = stream.shards();
    let retention_start = now - i64::from(stream.meta().retention_hours) * 3_600_000;
    let effective = match new.start.kind {
        StartKind::Latest => now,
        StartKind::TrimHorizon => retention_start,
        StartKind::AtTimestamp => new.start.timestamp_ms.unwrap_or(now).max(retention_start),
    };
    let mut events = Vec::with_capacity(shards.len());
    for shard in &shards {
        let next = match new.start.kind {
            StartKind::Latest => shard.tip(),
            StartKind::TrimHorizon => shard.trim_horizon(),
            StartKind::AtTimestamp => shard.counter_at_time(effective)?,
        };
        events.push(Event::Cursor {
            shard: shard.index(),
            next,
        });
    }
    Ok((events, effective))
}
