//! Which model registry this process uses: `--registry` (or `MILLRACE_REGISTRY`), or `up`'s
//! `[registry] location`, chosen once at start; [`open`] hands it to every command and
//! component that trains, promotes or serves. Without either, the data dir's own
//! (`DATA_DIR/lake/models`).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use millrace_serve::registry::Registry;

static CHOSEN: OnceLock<Registry> = OnceLock::new();

/// Opens the registry at `location` for `data_dir` and makes it the one [`open`] returns. A
/// second, different choice is an error naming both.
pub fn choose(
    data_dir: &Path,
    location: &str,
    s3: &millrace_lake::S3Options,
    from: &str,
) -> anyhow::Result<()> {
    let registry = Registry::open(data_dir, Some(location), s3)
        .with_context(|| format!("{from} = {location:?}"))?;
    if let Some(chosen) = CHOSEN.get() {
        if chosen.location() != registry.location() {
            bail!(
                "{from} = {location:?}, but the registry is already {} (from --registry or \
                 MILLRACE_REGISTRY); name one",
                chosen.location()
            );
        }
        return Ok(());
    }
    let _ = CHOSEN.set(registry);
    Ok(())
}

/// The registry chosen at start for `data_dir`, or the data dir's own.
pub fn open(data_dir: &Path) -> Registry {
    match CHOSEN.get() {
        Some(r) if r.data_dir() == data_dir => r.clone(),
        _ => Registry::new(data_dir),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_registry_per_process_and_a_second_choice_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let s3 = millrace_lake::S3Options::default();
        let e = super::choose(tmp.path(), "gs://b", &s3, "registry.location").unwrap_err();
        assert!(
            format!("{e:#}").contains("registry.location = \"gs://b\""),
            "{e:#}"
        );
        super::choose(tmp.path(), "memory://", &s3, "--registry").unwrap();
        assert_eq!(super::open(tmp.path()).location(), "memory://");
        // The same choice again (a flag and a config that agree) is fine; another is not.
        super::choose(tmp.path(), "memory://", &s3, "registry.location").unwrap();
        let e = super::choose(tmp.path(), "/elsewhere", &s3, "registry.location").unwrap_err();
        assert!(e.to_string().contains("already memory://"), "{e}");
        // Another data dir (a test's own) gets its own registry.
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            super::open(other.path()).root(),
            other.path().join("lake").join("models")
        );
    }
}
