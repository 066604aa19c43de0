//! Where models live: `<data-dir>/lake/models/NAME/vN/` holding `model.json` (the artifact),
//! `metrics.json` (the report) and `report.html`. A version exists once its model.json does:
//! it is written last, each file through a temporary file, fsync and rename.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use millrace_automl::model::ModelArtifact;

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

/// `NAME`, `NAME:vN`, a model folder, or a model.json path → the artifact and where it was.
pub fn load(data_dir: &Path, spec: &str) -> anyhow::Result<(ModelArtifact, PathBuf)> {
    let as_path = Path::new(spec);
    let file = if as_path.is_file() {
        as_path.to_path_buf()
    } else if as_path.join("model.json").is_file() {
        as_path.join("model.json")
    } else {
        let (name, version) = match spec.rsplit_once(':') {
            Some((n, v)) => {
                let v: u32 = v
                    .strip_prefix('v')
                    .unwrap_or(v)
                    .parse()
                    .with_context(|| format!("--model {spec}: version must look like v3"))?;
                (n, Some(v))
            }
            None => (spec, None),
        };
        check_name(name).with_context(|| format!("--model {spec}"))?;
        let all = versions(data_dir, name);
        let v = match version {
            Some(v) if all.contains(&v) => v,
            Some(v) => bail!(
                "model {name} has no version v{v} under {} (versions: {})",
                models_dir(data_dir).join(name).display(),
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", ")
                }
            ),
            None => *all.last().with_context(|| {
                format!(
                    "no model named {name} under {} (train one with `millrace train --name {name}`)",
                    models_dir(data_dir).display()
                )
            })?,
        };
        models_dir(data_dir)
            .join(name)
            .join(format!("v{v}"))
            .join("model.json")
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let model = ModelArtifact::from_json(&text, &file.display().to_string())?;
    Ok((model, file))
}
