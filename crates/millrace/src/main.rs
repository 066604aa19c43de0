//! The `millrace` binary: a thin command line over the library crates. Each subcommand lives in
//! `cmd/`; this file parses arguments, sets up logging and reports errors with context.

mod admin;
mod cli;
mod cmd;
mod config;
mod generate;
mod kinesis;
mod pipeline;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
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

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,millrace=info,millrace_gateway=info,millrace_stream=info",
        1 => "info,millrace=debug,millrace_gateway=debug,millrace_stream=debug",
        _ => "debug,millrace=trace,millrace_gateway=trace,millrace_stream=trace",
    };
    let filter =
        EnvFilter::try_from_env("MILLRACE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
