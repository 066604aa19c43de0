use anyhow::Context;

use crate::cli::GenerateChurnArgs;
use crate::generate::churn;

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
