//! `millrace generate`: synthetic data sets (a Telco-like churn CSV, a lake of churn records).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::generate::churn;

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Telco-like customer churn rows with the 21 columns of the public Telco churn CSV.
    Churn(GenerateChurnArgs),
    /// A lake of churn records as delivery writes it: ~5 MB objects under date-hour folders,
    /// NDJSON or concatenated JSON, with a share of customers sent again later (an update).
    ChurnLake(GenerateChurnLakeArgs),
}

#[derive(Debug, Args)]
pub struct GenerateChurnArgs {
    /// Number of rows.
    #[arg(long, default_value_t = 7043)]
    pub rows: usize,
    /// Random seed; the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV file ("-" for standard output).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct GenerateChurnLakeArgs {
    /// Folder to write into (objects go under raw/churn/YYYY/MM/DD/HH/).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of records, updates included.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Share of records that repeat an earlier customerID with changed values.
    #[arg(long, default_value_t = 0.02)]
    pub duplicate_share: f64,
    /// Object size to aim for, in MiB.
    #[arg(long, default_value_t = 5.0)]
    pub object_mib: f64,
    /// ndjson or concat.
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(command: GenerateCommand) -> anyhow::Result<()> {
    match command {
        GenerateCommand::Churn(args) => churn(args),
        GenerateCommand::ChurnLake(args) => churn_lake(args),
    }
}

pub fn churn(args: GenerateChurnArgs) -> anyhow::Result<()> {
    let rows = if args.out.as_os_str() == "-" {
        churn::write_csv(std::io::stdout().lock(), args.rows, args.seed)?
    } else {
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        let rows = churn::write_csv(std::io::BufWriter::new(file), args.rows, args.seed)
            .with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!(
            "wrote {rows} churn rows (seed {}) to {}",
            args.seed,
            args.out.display()
        );
        rows
    };
    let _ = rows;
    Ok(())
}

/// Writes a lake of churn records the way delivery lays it out, for prep benchmarks: objects
/// of about `object_mib` under `raw/churn/YYYY/MM/DD/HH/`, each hour holding 20 objects. A
/// `duplicate_share` of the records re-send a customer from an earlier object with later
/// values (tenure and charges grown, churn possibly flipped): an update that a deduplicating
/// job must keep instead of the original. Updates always land in a later object than the
/// record they replace, so "latest" is well defined by object order alone.
pub fn churn_lake(args: GenerateChurnLakeArgs) -> anyhow::Result<()> {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let concat = match args.format.as_str() {
        "ndjson" => false,
        "concat" => true,
        other => anyhow::bail!("--format: expected ndjson or concat, got {other:?}"),
    };
    anyhow::ensure!(
        (0.0..0.5).contains(&args.duplicate_share),
        "--duplicate-share must be in [0, 0.5)"
    );
    let unique = ((args.records as f64) * (1.0 - args.duplicate_share)).round() as usize;
    let target = (args.object_mib * 1048576.0) as usize;
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let mut customers = churn::generate(unique, args.seed);
    // Rows of closed objects that may still receive an update (a bounded sample).
    let mut candidates: Vec<[String; 21]> = Vec::new();
    let mut current_rows: Vec<[String; 21]> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(target + 4096);
    let (mut objects, mut written, mut updates, mut left_unique) = (0usize, 0usize, 0usize, unique);
    let ext = if concat { "" } else { ".json" };
    let bar = indicatif::ProgressBar::new(args.records as u64);
    let flush =
        |buf: &mut Vec<u8>, objects: &mut usize, first: usize, last: usize| -> anyhow::Result<()> {
            let hour = *objects / 20;
            let dir = args.out.join(format!(
                "raw/churn/2026/11/{:02}/{:02}",
                25 + hour / 24,
                hour % 24
            ));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let name = format!("churn-shardId-000000000000-{first:020}-{last:020}{ext}");
            std::fs::write(dir.join(&name), &buf[..])
                .with_context(|| format!("writing {}", dir.join(&name).display()))?;
            buf.clear();
            *objects += 1;
            Ok(())
        };
    let mut first = 0usize;
    while written < args.records {
        let want_update = !candidates.is_empty()
            && (left_unique == 0 || rng.random::<f64>() < args.duplicate_share);
        let row = if want_update {
            let i = rng.random_range(0..candidates.len());
            let mut row = candidates.swap_remove(i);
            let tenure: u32 = row[5].parse().unwrap_or(0) + rng.random_range(1..4);
            let monthly: f64 = row[18].parse().unwrap_or(0.0);
            row[5] = tenure.to_string();
            row[19] = format!("{:.2}", monthly * tenure as f64);
            if rng.random::<f64>() < 0.3 {
                row[20] = if row[20] == "Yes" { "No" } else { "Yes" }.into();
            }
            updates += 1;
            row
        } else {
            match customers.next() {
                Some(r) => {
                    left_unique -= 1;
                    r
                }
                None => break,
            }
        };
        let obj: serde_json::Map<String, serde_json::Value> = churn::COLUMNS
            .iter()
            .zip(row.iter())
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::to_writer(&mut buf, &obj)?;
        if !concat {
            buf.push(b'\n');
        }
        if !want_update {
            current_rows.push(row);
        }
        written += 1;
        if buf.len() >= target {
            flush(&mut buf, &mut objects, first, written - 1)?;
            first = written;
            // The closed object's customers may now be updated; keep the sample bounded.
            for r in current_rows.drain(..) {
                if candidates.len() < 200_000 {
                    candidates.push(r);
                } else {
                    let j = rng.random_range(0..candidates.len());
                    candidates[j] = r;
                }
            }
            bar.set_position(written as u64);
        }
    }
    if !buf.is_empty() {
        flush(&mut buf, &mut objects, first, written - 1)?;
    }
    bar.finish_and_clear();
    eprintln!(
        "wrote {written} records ({} customers, {updates} updates) in {objects} {} objects under {}",
        written - updates,
        if concat {
            "concatenated-JSON"
        } else {
            "NDJSON"
        },
        args.out.join("raw/churn").display()
    );
    Ok(())
}
