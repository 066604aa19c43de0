//! Reading every shard of a stream across reshards: a shard's task starts only once each of
//! its parents has ended (read to its closing end and checkpointed as such), and shards a
//! reshard adds later are found by listing again. This is the order in which a Kinesis
//! consumer reads every record once, in order per partition key (KCL does the same).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::IoError;
use crate::source::{RecordSource, ShardInfo};

/// How a shard's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardExit {
    /// The shard was closed by a reshard and everything in it is done: its children may start.
    Ended,
    /// The task stopped for another reason (shutdown, caught up in a one-shot run).
    Stopped,
    /// A consumer group handed the shard to another member: it starts again here if the
    /// group hands it back.
    Released,
}

/// How often the shard list is read again to find shards a reshard added.
const RELIST_EVERY: Duration = Duration::from_secs(2);

/// Runs `run(shard)` for every shard of `source` in parent-before-child order. `ended` says
/// whether a shard's checkpoint already records its end (so its task need not run again).
/// With `until_idle`, returns once no task runs and none can start; otherwise runs until
/// `shutdown` turns true and every task has returned. The first task error aborts the others
/// and is returned.
pub async fn for_each_shard<E, F, Fut>(
    source: &dyn RecordSource,
    until_idle: bool,
    mut shutdown: watch::Receiver<bool>,
    ended: impl Fn(&str) -> bool,
    mut run: F,
) -> std::result::Result<(), E>
where
    E: From<IoError> + Send + 'static,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = std::result::Result<ShardExit, E>> + Send + 'static,
{
    let mut plan = Plan::default();
    let mut tasks: tokio::task::JoinSet<(String, std::result::Result<ShardExit, E>)> =
        tokio::task::JoinSet::new();
    let mut relist = true;
    let mut watching = true;
    loop {
        if relist && !*shutdown.borrow() {
            let shards = source.lineage().await.map_err(E::from)?;
            for id in plan.ready(&shards, &ended) {
                let fut = run(id.clone());
                tasks.spawn(async move { (id, fut.await) });
            }
            relist = false;
        }
        if tasks.is_empty() && (until_idle || *shutdown.borrow()) {
            return Ok(());
        }
        tokio::select! {
            joined = tasks.join_next(), if !tasks.is_empty() => {
                let (id, res) = joined.expect("a task was running").map_err(|e| {
                    E::from(IoError::task("reading a shard".to_owned(), e))
                })?;
                match res {
                    Ok(ShardExit::Ended) => {
                        plan.ended.insert(id);
                        relist = true;
                    }
                    Ok(ShardExit::Stopped) => {}
                    Ok(ShardExit::Released) => {
                        plan.started.remove(&id);
                    }
                    Err(e) => {
                        tasks.abort_all();
                        return Err(e);
                    }
                }
            }
            _ = tokio::time::sleep(RELIST_EVERY), if !until_idle => relist = true,
            changed = shutdown.changed(), if watching => watching = changed.is_ok(),
        }
    }
}

/// Which shards have started and ended in this run.
#[derive(Debug, Default)]
struct Plan {
    started: HashSet<String>,
    ended: HashSet<String>,
}

impl Plan {
    /// Shards that may start now: not started, and every parent ended (in this run, by its
    /// checkpoint, or gone from the list because retention removed it).
    fn ready(&mut self, shards: &[ShardInfo], checkpointed: &impl Fn(&str) -> bool) -> Vec<String> {
        let listed: HashMap<&str, &ShardInfo> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut out = Vec::new();
        // Ending a shard by its checkpoint can make children ready: repeat until stable.
        loop {
            let mut changed = false;
            for s in shards {
                if self.started.contains(&s.id) {
                    continue;
                }
                let parents_done = s
                    .parents
                    .iter()
                    .all(|p| self.ended.contains(p) || !listed.contains_key(p.as_str()));
                if !parents_done {
                    continue;
                }
                self.started.insert(s.id.clone());
                changed = true;
                if checkpointed(&s.id) {
                    self.ended.insert(s.id.clone());
                } else {
                    out.push(s.id.clone());
                }
            }
            if !changed {
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str]) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn children_wait_for_every_parent() {
        let shards = vec![
            shard("0", &[]),
            shard("1", &[]),
            shard("2", &["0", "1"]),
            shard("3", &["2"]),
            shard("4", &["2"]),
        ];
        let mut plan = Plan::default();
        assert_eq!(plan.ready(&shards, &|_| false), ["0", "1"]);
        plan.ended.insert("0".into());
        assert!(plan.ready(&shards, &|_| false).is_empty());
        plan.ended.insert("1".into());
        assert_eq!(plan.ready(&shards, &|_| false), ["2"]);
        plan.ended.insert("2".into());
        assert_eq!(plan.ready(&shards, &|_| false), ["3", "4"]);
    }

    #[test]
    fn checkpointed_ends_and_expired_parents_release_children() {
        let shards = vec![shard("1", &[]), shard("2", &["0", "1"]), shard("3", &["2"])];
        let mut plan = Plan::default();
        // "0" is gone (retention), "1" and "2" ended before a restart.
        let ready = plan.ready(&shards, &|id| id == "1" || id == "2");
        assert_eq!(ready, ["3"]);
    }
}
