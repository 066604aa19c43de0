//! Where models live: `<data-dir>/lake/models/NAME/vN/` holding `model.json` (the artifact),
//! `metrics.json` (the report) and `report.html`. A version exists once its model.json does:
//! it is written last, each file through a temporary file, fsync and rename. Reading models
//! (with stages and promotion) is `millrace_serve::registry`.

use std::path::{Path, PathBuf};

use anyhow::bail;

pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("lake").join("models")
}

/// Model names become folder names: keep them to letters, digits, `-`, `_` and `.`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "--name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.' (not starting with '.')"
        );
    }
    Ok(())
}

/// Versions saved so far (those with a model.json), ascending.
pub fn versions(data_dir: &Path, name: &str) -> Vec<u32> {
    let dir = models_dir(data_dir).join(name);
    let mut out: Vec<u32> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.strip_prefix('v')?.parse().ok()?;
            e.path().join("model.json").is_file().then_some(v)
        })
        .collect();
    out.sort_unstable();
    out
}
