//! The `millrace` binary: a thin command line over the library crates. Each subcommand lives in
//! `cmd/`; this file parses arguments, sets up logging and reports errors with context.

mod admin;
mod channels;
mod cli;
mod cmd;
mod config;
mod console;
mod console_gate;
mod console_preview;
mod console_profile;
mod console_s3;
mod console_sql;
mod console_train;
mod engine;
mod firehose;
mod generate;
mod kinesis;
mod pipeline;
mod rates;
mod registry;
mod signing;
mod supervise;
mod table_channel;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the gateway allocates and frees a few hundred KiB
/// per PutRecords or GetRecords call from every worker thread, which glibc's allocator served
/// with page-zeroing mmap/munmap round trips and arena consolidation (about a fifth of the
/// server's CPU in a `perf` profile of `millrace bench ingest`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    // A store of many shards and many connections needs more than the usual soft limit.
    millrace_common::fd::raise_nofile_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every crate of ours logs at the chosen level; dependencies only warn (or more with `-vv`).
const OUR_CRATES: [&str; 18] = [
    "millrace",
    "millrace_common",
    "millrace_http",
    "millrace_stream",
    "millrace_queue",
    "millrace_gateway",
    "millrace_io",
    "millrace_lake",
    "millrace_delivery",
    "millrace_prep",
    "millrace_ballista",
    "millrace_wrangle",
    "millrace_automl",
    "millrace_serve",
    "millrace_tables",
    "millrace_firehose",
    "millrace_auth",
    "millrace_console",
];

/// The default log filter for `-v` repeated `verbose` times; `MILLRACE_LOG` replaces it.
fn default_filter(verbose: u8) -> String {
    let (others, ours) = match verbose {
        0 => ("warn", "info"),
        1 => ("info", "debug"),
        _ => ("debug", "trace"),
    };
    std::iter::once(others.to_owned())
        .chain(OUR_CRATES.iter().map(|c| format!("{c}={ours}")))
        .collect::<Vec<_>>()
        .join(",")
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MILLRACE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose)));
    // Colours only on a terminal: a log redirected to a file stays plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_filter_names_every_crate_of_the_workspace() {
        let filter = super::default_filter(0);
        let crates = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().replace('-', "_"))
            .filter(|n| n.starts_with("millrace"));
        for krate in crates {
            assert!(
                filter.contains(&format!("{krate}=info")),
                "{krate} missing from {filter}"
            );
        }
    }
}
