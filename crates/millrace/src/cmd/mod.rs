//! One module per subcommand.

mod bench;
mod deliver;
mod demo;
mod generate;
pub mod produce;
pub mod up;

use crate::cli::{BenchCommand, Cli, Command, GenerateCommand};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&cli.data_dir, args).await,
        Command::Up(args) => up::run(&cli.data_dir, args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Deliver(args) => deliver::run(&cli.data_dir, args).await,
        Command::Generate(GenerateCommand::Churn(args)) => generate::churn(args),
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(args).await,
        Command::Bench(BenchCommand::Deliver(args)) => bench::deliver(args).await,
    }
}
