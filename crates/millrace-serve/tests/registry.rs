//! The registry on real folders in a temporary data dir: stages, atomic promotion, rollback
//! walking back, which version a spec resolves to, loading a real trained artifact, clear
//! errors, stale and held locks, and concurrent promotions that never corrupt or lose a change;
//! the same on an object store (`memory://`), where conditional writes replace the lock.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use millrace_automl::train::{self, Options, Trained};
use millrace_serve::registry::{Registry, Stage};
use millrace_wrangle::{Column, Frame};
use serde_json::Value;

/// A tiny regression model, trained once per test binary.
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let n = 120;
        let x: Vec<f64> = (0..n).map(|i| i as f64 / 10.0).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| 2.0 * v + 1.0 + ((i * 7 % 5) as f64 - 2.0) * 0.1)
            .collect();
        let mut f = Frame::new(n);
        f.set("x".into(), Column::Num(x));
        f.set("y".into(), Column::Num(y));
        let opts = Options {
            folds: 2,
            threads: 1,
            ..Options::new("y")
        };
        train::train(&f, &opts, &|_| {}).expect("training the tiny model")
    })
}

/// `NAME/vN/` with a model.json: the real artifact (named and versioned as train saves it)
/// and its metrics.json when `real`, else a placeholder (enough for everything but `load`).
fn add_version(reg: &Registry, name: &str, v: u32, real: bool) {
    let dir = reg.root().join(name).join(format!("v{v}"));
    std::fs::create_dir_all(&dir).unwrap();
    if real {
        let t = trained();
        let mut model = t.model.clone();
        model.name = name.to_owned();
        model.version = v;
        let mut report = t.report.clone();
        report.name = name.to_owned();
        report.version = v;
        std::fs::write(
            dir.join("metrics.json"),
            serde_json::to_vec_pretty(&report).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("model.json"), model.to_json()).unwrap();
    } else {
        std::fs::write(
            dir.join("model.json"),
            format!(r#"{{"name": "{name}", "version": {v}}}"#),
        )
        .unwrap();
    }
}

fn setup(name: &str, versions: u32) -> (tempfile::TempDir, Registry) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::new(tmp.path());
    for v in 1..=versions {
        add_version(&reg, name, v, false);
    }
    (tmp, reg)
}

fn stages(reg: &Registry, name: &str) -> Vec<(u32, Stage)> {
    reg.info(name)
        .unwrap()
        .versions
        .iter()
        .map(|v| (v.version, v.stage))
        .collect()
}

fn state(reg: &Registry, name: &str) -> Value {
    let text = std::fs::read_to_string(reg.root().join(name).join("_registry.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn err<T: std::fmt::Debug>(r: Result<T, millrace_serve::ServeError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn list_and_info_show_stages_and_metrics() {
    let (tmp, reg) = setup("churn", 2);
    add_version(&reg, "churn", 3, true);
    add_version(&reg, "alpha", 1, false);
    // Not versions or models: a version being written, a stray file, a hidden folder.
    std::fs::create_dir_all(reg.root().join("churn").join("v4")).unwrap();
    std::fs::write(reg.root().join("README"), "x").unwrap();
    std::fs::create_dir_all(reg.root().join(".trash")).unwrap();

    assert_eq!(reg.root(), tmp.path().join("lake").join("models"));
    assert_eq!(reg.versions("churn"), vec![1, 2, 3]);
    assert!(reg.versions("nope").is_empty());

    let all = reg.list().unwrap();
    let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alpha", "churn"]);
    let churn = &all[1];
    assert_eq!(churn.production, None);
    assert!(churn.history.is_empty());
    assert!(churn.versions.iter().all(|v| v.stage == Stage::Candidate));
    assert!(churn.versions.iter().all(|v| v.created_ms > 0));
    // Placeholders have no metrics; the real version has the report's headline.
    assert!(churn.versions[0].headline.is_empty());
    assert_eq!(churn.versions[0].objective, None);
    let v3 = &churn.versions[2];
    let keys: Vec<&str> = v3.headline.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["rmse", "mae", "r2"]);
    assert_eq!(v3.objective.as_deref(), Some("rmse"));

    reg.promote("churn", 1).unwrap();
    reg.promote("churn", 2).unwrap();
    assert_eq!(
        stages(&reg, "churn"),
        [
            (1, Stage::Archived),
            (2, Stage::Production),
            (3, Stage::Candidate)
        ]
    );
    assert_eq!(reg.info("churn").unwrap().production, Some(2));

    // No models folder yet: an empty list, not an error.
    let empty = tempfile::tempdir().unwrap();
    assert!(Registry::new(empty.path()).list().unwrap().is_empty());
}

#[test]
fn promote_writes_state_atomically_and_archives_the_previous() {
    let (_tmp, reg) = setup("churn", 3);
    assert_eq!(reg.promote("churn", 2).unwrap(), None);
    let dir = reg.root().join("churn");
    let s = state(&reg, "churn");
    assert_eq!(s["production"], 2);
    assert_eq!(s["history"].as_array().unwrap().len(), 1);
    assert_eq!(s["history"][0]["version"], 2);
    assert!(s["history"][0]["promoted_at_ms"].as_i64().unwrap() > 0);
    // Nothing left behind: no temporary file, no lock.
    assert!(!dir.join("_registry.json.tmp").exists());
    assert!(!dir.join("_registry.lock").exists());

    assert_eq!(reg.promote("churn", 3).unwrap(), Some(2));
    assert_eq!(
        stages(&reg, "churn"),
        [
            (1, Stage::Candidate),
            (2, Stage::Archived),
            (3, Stage::Production)
        ]
    );
    // Promoting what is in production changes nothing.
    assert_eq!(reg.promote("churn", 3).unwrap(), Some(3));
    assert_eq!(state(&reg, "churn")["history"].as_array().unwrap().len(), 2);
    // `_registry.json` is not mistaken for a model or a version.
    assert_eq!(reg.list().unwrap().len(), 1);
    assert_eq!(reg.versions("churn"), vec![1, 2, 3]);
}

#[test]
fn rollback_walks_back_through_production_versions() {
    let (_tmp, reg) = setup("churn", 4);
    assert_eq!(
        err(reg.rollback("churn")),
        "model churn has no production version to roll back from (promote one with millrace \
         models promote churn:vN)"
    );
    for v in [1, 2, 3] {
        reg.promote("churn", v).unwrap();
    }
    assert_eq!(reg.rollback("churn").unwrap(), 2);
    assert_eq!(reg.current("churn").unwrap(), 2);
    // A second rollback goes further back, not forth to v3.
    assert_eq!(reg.rollback("churn").unwrap(), 1);
    assert_eq!(
        err(reg.rollback("churn")),
        "model churn has no earlier production version to roll back to (v1 is in production)"
    );
    let s = state(&reg, "churn");
    let hist: Vec<(u64, bool)> = s["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["version"].as_u64().unwrap(),
                p["rollback"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hist,
        [(1, false), (2, false), (3, false), (2, true), (1, true)]
    );
    assert_eq!(
        stages(&reg, "churn"),
        [
            (1, Stage::Production),
            (2, Stage::Archived),
            (3, Stage::Archived),
            (4, Stage::Candidate)
        ]
    );

    // A promotion after rollbacks stacks on the current one: rolling back returns to v1.
    reg.promote("churn", 4).unwrap();
    assert_eq!(reg.rollback("churn").unwrap(), 1);
}

#[test]
fn rollback_skips_versions_whose_folder_is_gone() {
    let (_tmp, reg) = setup("churn", 3);
    for v in [1, 2, 3] {
        reg.promote("churn", v).unwrap();
    }
    std::fs::remove_dir_all(reg.root().join("churn").join("v2")).unwrap();
    assert_eq!(reg.rollback("churn").unwrap(), 1);
}

#[test]
fn resolve_prefers_production_then_latest_and_takes_versions_and_paths() {
    let (_tmp, reg) = setup("churn", 3);
    let file = |v: u32| {
        reg.root()
            .join("churn")
            .join(format!("v{v}"))
            .join("model.json")
    };
    // None promoted: the latest.
    assert_eq!(
        reg.resolve("churn").unwrap(),
        (file(3), "churn".to_owned(), 3)
    );
    assert_eq!(reg.current("churn").unwrap(), 3);
    // Production wins over a newer version.
    reg.promote("churn", 2).unwrap();
    assert_eq!(reg.resolve("churn").unwrap().2, 2);
    assert_eq!(reg.current("churn").unwrap(), 2);
    add_version(&reg, "churn", 4, false);
    assert_eq!(reg.current("churn").unwrap(), 2);
    // Pinned versions.
    assert_eq!(reg.resolve("churn:v1").unwrap().2, 1);
    assert_eq!(reg.resolve("churn:4").unwrap().2, 4);
    // Paths: a version folder, or its model.json (name and version from the file).
    let dir = reg.root().join("churn").join("v3");
    let (f, name, v) = reg.resolve(dir.to_str().unwrap()).unwrap();
    assert_eq!((f, name.as_str(), v), (file(3), "churn", 3));
    let (f, name, v) = reg.resolve(file(1).to_str().unwrap()).unwrap();
    assert_eq!((f, name.as_str(), v), (file(1), "churn", 1));
}

#[test]
fn errors_name_the_model_the_versions_and_the_folder() {
    let (_tmp, reg) = setup("churn", 2);
    let root = reg.root().display().to_string();
    assert_eq!(
        err(reg.promote("churn", 9)),
        "model churn has no version v9 (versions: v1, v2)"
    );
    assert_eq!(
        err(reg.resolve("churn:v9")),
        "model churn has no version v9 (versions: v1, v2)"
    );
    let missing = format!("no model named x under {root} (train one with millrace train --name x)");
    assert_eq!(err(reg.info("x")), missing);
    assert_eq!(err(reg.resolve("x")), missing);
    assert_eq!(err(reg.current("x")), missing);
    assert_eq!(err(reg.promote("x", 1)), missing);
    assert_eq!(err(reg.rollback("x")), missing);
    assert_eq!(err(reg.load("x:v1")), missing);
    assert!(err(reg.resolve("churn:latest")).contains("after ':' comes a version such as v3"));
    assert!(err(reg.info("../etc")).contains("use 1 to 128 letters"));
    assert!(Registry::check_name(".hidden").is_err());
    assert!(Registry::check_name("").is_err());
    assert!(Registry::check_name("churn-v2_final.1").is_ok());

    // A model folder with no version yet.
    std::fs::create_dir_all(reg.root().join("empty")).unwrap();
    assert!(reg.info("empty").unwrap().versions.is_empty());
    assert!(err(reg.resolve("empty")).starts_with("no model named empty under"));

    // A production version whose folder was deleted is not silently replaced.
    reg.promote("churn", 2).unwrap();
    std::fs::remove_dir_all(reg.root().join("churn").join("v2")).unwrap();
    let e = err(reg.current("churn"));
    assert!(e.contains("production version v2 has no model.json"), "{e}");

    // A placeholder is not a model.
    assert!(err(reg.load("churn:v1")).contains("not a millrace model"));
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let (_tmp, reg) = setup("churn", 2);
    let path = reg.root().join("churn").join("_registry.json");
    std::fs::write(&path, "{\"production\": 1, \"hist").unwrap();
    for e in [
        err(reg.info("churn")),
        err(reg.current("churn")),
        err(reg.promote("churn", 2)),
        err(reg.rollback("churn")),
        err(reg.list()),
    ] {
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("not a registry state file"), "{e}");
    }
    // The failed promotion left the file as it was, and released its lock.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"production\": 1, \"hist"
    );
    assert!(!reg.root().join("churn").join("_registry.lock").exists());
}

#[test]
fn load_reads_the_resolved_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::new(tmp.path());
    add_version(&reg, "house", 1, true);
    add_version(&reg, "house", 2, true);
    let (m, v) = reg.load("house").unwrap();
    assert_eq!((m.name.as_str(), m.version, v), ("house", 2, 2));
    reg.promote("house", 1).unwrap();
    let (m, v) = reg.load("house").unwrap();
    assert_eq!((m.version, v), (1, 1));
    assert_eq!(reg.load("house:v2").unwrap().1, 2);
    let dir = reg.root().join("house").join("v2");
    assert_eq!(reg.load(dir.to_str().unwrap()).unwrap().1, 2);
    // Loaded artifacts predict.
    let mut f = Frame::new(2);
    f.set("x".into(), Column::Num(vec![1.0, 5.0]));
    let p = m.predict(&f).unwrap();
    assert_eq!(p.rows, 2);
    assert!(p.values[1] > p.values[0]);
}

#[test]
fn a_stale_lock_is_taken_over_and_a_held_one_waited_for() {
    let (_tmp, reg) = setup("churn", 2);
    let lock = reg.root().join("churn").join("_registry.lock");
    // Left by a process that died a minute ago.
    let f = std::fs::File::create(&lock).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    drop(f);
    assert_eq!(reg.promote("churn", 1).unwrap(), None);
    assert!(!lock.exists());
    let leftovers: Vec<_> = std::fs::read_dir(reg.root().join("churn"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("_registry.lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Held by a live change: promotion waits for it.
    std::fs::write(&lock, "pid 1 seq 0 at 0\n").unwrap();
    let release = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(lock).unwrap();
        })
    };
    let started = Instant::now();
    assert_eq!(reg.promote("churn", 2).unwrap(), Some(1));
    assert!(started.elapsed() >= Duration::from_millis(250));
    release.join().unwrap();
    assert_eq!(reg.current("churn").unwrap(), 2);
}

#[test]
fn concurrent_promotions_never_corrupt_or_lose_a_change() {
    let (_tmp, reg) = setup("churn", 4);
    let rounds = 40;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Each writer alternates its own two versions, so every promotion changes production
        // and is recorded.
        let writers: Vec<_> = [(1, 2), (3, 4)]
            .into_iter()
            .map(|(a, b)| {
                let reg = reg.clone();
                s.spawn(move || {
                    for i in 0..rounds {
                        reg.promote("churn", if i % 2 == 0 { a } else { b })
                            .unwrap();
                    }
                })
            })
            .collect();
        // Readers never see a torn file.
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let info = reg.info("churn").unwrap();
                assert!(info.versions.len() == 4);
                reg.current("churn").unwrap();
                reads += 1;
            }
            reads
        });
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    let s = state(&reg, "churn");
    let hist = s["history"].as_array().unwrap();
    assert_eq!(hist.len(), 2 * rounds);
    assert_eq!(s["production"], hist.last().unwrap()["version"]);
    let dir = reg.root().join("churn");
    assert!(!dir.join("_registry.lock").exists());
    assert!(!dir.join("_registry.json.tmp").exists());
}

/// Which writer wrote a file of a version made by [`create_concurrently`] (`writer N`).
fn writer_of(reg: &Registry, v: u32, file: &str) -> String {
    let bytes = reg
        .version_file("churn", v, file)
        .unwrap()
        .unwrap_or_else(|| panic!("v{v} has no {file}"));
    let text = String::from_utf8(bytes).unwrap();
    let at = text
        .find("writer ")
        .unwrap_or_else(|| panic!("v{v}/{file}: {text}"));
    text[at..].split(['"', '\n']).next().unwrap().to_owned()
}

/// `writers` threads save a version of `churn` at once, each writing its own files. Checks
/// that they got distinct versions 1..=writers and that each version's files (read back
/// through the registry, so from the store when it is one) all come from one writer.
fn create_concurrently(reg: &Registry, writers: usize) {
    let start = std::sync::Barrier::new(writers);
    let got: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (reg, start) = (reg.clone(), &start);
                s.spawn(move || {
                    start.wait();
                    let new = reg.new_version("churn").unwrap();
                    let v = new.version();
                    let tag = format!("writer {i}");
                    // The slow part of a real save: the writer's files go in one by one.
                    let model = format!(r#"{{"name": "churn", "version": {v}, "by": "{tag}"}}"#);
                    new.commit(
                        &[
                            ("metrics.json", tag.as_bytes()),
                            ("report.html", tag.as_bytes()),
                        ],
                        model.as_bytes(),
                    )
                    .unwrap();
                    v
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        writers,
        "two writers claimed one version: {got:?}"
    );
    assert_eq!(
        reg.versions("churn"),
        (1..=writers as u32).collect::<Vec<_>>()
    );
    // Each version's files all come from one writer, and each writer has one version.
    let mut owners = Vec::new();
    for v in reg.versions("churn") {
        let owner = writer_of(reg, v, "model.json");
        for f in ["metrics.json", "report.html"] {
            assert_eq!(writer_of(reg, v, f), owner, "v{v}/{f}");
        }
        let model: Value =
            serde_json::from_slice(&reg.version_file("churn", v, "model.json").unwrap().unwrap())
                .unwrap();
        assert_eq!(model["version"], v);
        owners.push(owner);
    }
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), writers);
}

#[test]
fn concurrent_creators_get_distinct_versions_and_none_is_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::new(tmp.path());
    create_concurrently(&reg, 8);
    assert!(!reg.root().join("churn").join("_registry.lock").exists());
}

#[test]
fn a_reservation_counts_until_dropped_and_a_version_exists_once_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::new(tmp.path());
    assert!(err(reg.new_version("a/b")).contains("use 1 to 128 letters"));
    let first = reg.new_version("churn").unwrap();
    assert_eq!(first.version(), 1);
    assert!(first.dir().is_dir());
    // Reserved but not written: not a version yet, yet the next creator skips its number.
    assert!(reg.versions("churn").is_empty());
    let second = reg.new_version("churn").unwrap();
    assert_eq!(second.version(), 2);
    let dir = second.commit(&[("metrics.json", b"{}")], b"{}").unwrap();
    assert!(dir.join("model.json").is_file() && dir.join("metrics.json").is_file());
    assert_eq!(reg.versions("churn"), vec![2]);
    // A failed save (dropped reservation) leaves nothing behind.
    let first_dir = first.dir().to_path_buf();
    drop(first);
    assert!(!first_dir.exists());
    assert_eq!(reg.new_version("churn").unwrap().version(), 3);
    // A held lock makes creation wait, as promotion does.
    let lock = reg.root().join("churn").join("_registry.lock");
    std::fs::write(&lock, "pid 1 seq 0 at 0\n").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::remove_file(lock).unwrap();
    });
    let started = Instant::now();
    let next = reg.new_version("churn").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(next.version(), 3);
    release.join().unwrap();
}

/// A registry on an object store (`memory://` here; S3 through moto in
/// tests/compat/registry_flows.py), with a data dir for its local copies.
fn on_store() -> (tempfile::TempDir, Registry) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(tmp.path(), Some("memory://"), &Default::default()).unwrap();
    (tmp, reg)
}

#[test]
fn a_registry_on_an_object_store_numbers_promotes_rolls_back_and_loads() {
    let (tmp, reg) = on_store();
    assert_eq!(reg.location(), "memory://");
    assert!(reg.list().unwrap().is_empty());
    assert!(err(reg.info("churn")).contains("no model named churn under memory://"));
    for v in 1..=3u32 {
        let new = reg.new_version("churn").unwrap();
        assert_eq!(new.version(), v);
        // Written here first: the version's local copy is where train writes its files.
        assert!(new.dir().starts_with(tmp.path()));
        let t = trained();
        let mut model = t.model.clone();
        model.version = v;
        model.name = "churn".into();
        let metrics = serde_json::to_vec(&t.report).unwrap();
        new.commit(&[("metrics.json", &metrics)], model.to_json().as_bytes())
            .unwrap();
    }
    assert_eq!(reg.versions("churn"), vec![1, 2, 3]);
    assert_eq!(reg.promote("churn", 1).unwrap(), None);
    assert_eq!(reg.promote("churn", 3).unwrap(), Some(1));
    assert_eq!(
        stages(&reg, "churn"),
        vec![
            (1, Stage::Archived),
            (2, Stage::Candidate),
            (3, Stage::Production)
        ]
    );
    assert!(!reg.info("churn").unwrap().versions[0].headline.is_empty());
    assert_eq!(reg.rollback("churn").unwrap(), 1);
    assert_eq!(reg.current("churn").unwrap(), 1);
    assert!(err(reg.rollback("churn")).contains("no earlier"));
    // Loading a version not copied here yet fetches it, files and all.
    let copy = reg.version_dir("churn", 2);
    std::fs::remove_dir_all(&copy).unwrap();
    let (model, v) = reg.load("churn:v2").unwrap();
    assert_eq!((model.version, v), (2, 2));
    assert!(copy.join("metrics.json").is_file());
    // A copy whose model.json is not the store's (another bucket once had this URL) is
    // fetched again.
    std::fs::write(copy.join("model.json"), b"{}").unwrap();
    std::fs::write(copy.join(".etag"), b"another").unwrap();
    assert_eq!(reg.load("churn:2").unwrap().0.version, 2);
    assert!(err(reg.promote("churn", 9)).contains("9"));
    assert!(err(reg.load("churn:v9")).contains("v9"));
}

#[test]
fn on_an_object_store_concurrent_creators_and_promoters_never_collide_or_lose_a_change() {
    let (_tmp, reg) = on_store();
    create_concurrently(&reg, 6);
    let rounds = 25;
    std::thread::scope(|s| {
        for (a, b) in [(1, 2), (3, 4), (5, 6)] {
            let reg = reg.clone();
            s.spawn(move || {
                for i in 0..rounds {
                    reg.promote("churn", if i % 2 == 0 { a } else { b })
                        .unwrap();
                }
            });
        }
    });
    let info = reg.info("churn").unwrap();
    assert_eq!(info.history.len(), 3 * rounds, "a promotion was lost");
    assert_eq!(info.production, Some(info.history.last().unwrap().version));
    // A reservation dropped before its commit is no version; its number stays taken (another
    // machine may still be listing it), so the next creator gets the one after.
    let dropped = reg.new_version("churn").unwrap();
    assert_eq!(dropped.version(), 7);
    let dir = dropped.dir().to_path_buf();
    drop(dropped);
    assert!(!dir.exists());
    assert_eq!(reg.versions("churn").len(), 6);
    assert_eq!(reg.new_version("churn").unwrap().version(), 8);
}

#[test]
fn registry_locations_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Registry::open(tmp.path(), Some("gs://b/m"), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("gs://b/m"), "{e}");
    let folder = tmp.path().join("elsewhere");
    let reg = Registry::open(
        tmp.path(),
        Some(folder.to_str().unwrap()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(reg.root(), folder);
    assert_eq!(reg.lake(), tmp.path().join("lake"));
}
