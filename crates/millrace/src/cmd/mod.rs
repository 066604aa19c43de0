//! One module per subcommand.

mod bench;
pub(crate) mod data_io;
mod deliver;
mod demo;
mod endpoint;
mod generate;
pub mod models;
pub mod monitor;
mod predict;
pub mod prep;
pub mod produce;
mod profile;
mod query;
pub mod score;
pub mod status;
pub(crate) mod train;
pub mod up;
mod wrangle;

use crate::cli::{BenchCommand, Cli, Command, GenerateCommand};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&cli.data_dir, args).await,
        Command::Up(args) => up::run(&cli.data_dir, args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Deliver(args) => deliver::run(&cli.data_dir, args).await,
        Command::Query(args) => query::run(&cli.data_dir, args).await,
        Command::Prep(args) => prep::run(&cli.data_dir, args).await,
        Command::Profile(args) => profile::run(&cli.data_dir, args).await,
        Command::Wrangle(args) => wrangle::run(&cli.data_dir, args).await,
        Command::Train(args) => train::run(&cli.data_dir, args).await,
        Command::Predict(args) => predict::run(&cli.data_dir, args).await,
        Command::Endpoint(args) => endpoint::run(&cli.data_dir, args).await,
        Command::Score(args) => score::run(&cli.data_dir, args).await,
        Command::Status(args) => status::run(args).await,
        Command::Models(cmd) => models::run(&cli.data_dir, cmd).await,
        Command::Monitor(args) => monitor::run(&cli.data_dir, args).await,
        Command::Generate(GenerateCommand::Churn(args)) => generate::churn(args),
        Command::Generate(GenerateCommand::ChurnLake(args)) => generate::churn_lake(args),
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(args).await,
        Command::Bench(BenchCommand::Deliver(args)) => bench::deliver(args).await,
        Command::Bench(BenchCommand::Wrangle(args)) => bench::wrangle(&cli.data_dir, args).await,
        Command::Bench(BenchCommand::Endpoint(args)) => bench::endpoint(args).await,
        Command::Bench(BenchCommand::Score(args)) => bench::score(args).await,
    }
}
