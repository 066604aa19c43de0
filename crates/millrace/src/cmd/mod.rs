//! One module per subcommand, each holding its arguments beside its `run`.

pub(crate) mod ballista;
pub(crate) mod bench;
pub(crate) mod data_io;
pub(crate) mod deliver;
pub(crate) mod demo;
pub(crate) mod endpoint;
pub(crate) mod generate;
pub(crate) mod identity;
pub(crate) mod key;
pub mod models;
pub mod monitor;
pub(crate) mod predict;
pub mod prep;
pub mod produce;
pub(crate) mod profile;
pub(crate) mod query;
pub mod score;
pub mod status;
pub(crate) mod train;
pub mod up;
pub(crate) mod wrangle;

use millrace_common::layout::DataDir;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = DataDir::new(cli.data_dir.clone());
    if let Some(location) = &cli.registry {
        let s3 = crate::cli::s3_options(std::env::var("AWS_ENDPOINT_URL_S3").ok(), false);
        crate::registry::choose(&cli.data_dir, location, &s3, "--registry")?;
    }
    match cli.command {
        Command::Demo(args) => demo::run(&cli.data_dir, args).await,
        Command::Up(args) => up::run(&data_dir, args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Deliver(args) => deliver::run(&cli.data_dir, args).await,
        Command::Query(args) => query::run(&data_dir, args).await,
        Command::Prep(args) => prep::run(&data_dir, args).await,
        Command::Ballista(cmd) => ballista::run(cmd).await,
        Command::Profile(args) => profile::run(&data_dir, args).await,
        Command::Wrangle(args) => wrangle::run(&data_dir, args).await,
        Command::Train(args) => train::run(&cli.data_dir, args).await,
        Command::Predict(args) => predict::run(&cli.data_dir, args).await,
        Command::Endpoint(args) => endpoint::run(&cli.data_dir, args).await,
        Command::Score(args) => score::run(&cli.data_dir, args).await,
        Command::Status(args) => status::run(args).await,
        Command::Models(cmd) => models::run(&cli.data_dir, cmd).await,
        Command::Monitor(args) => monitor::run(&data_dir, args).await,
        Command::Generate(cmd) => generate::run(cmd),
        Command::Bench(cmd) => bench::run(&data_dir, cmd).await,
        Command::Identity(cmd) => identity::run(cmd),
        Command::Key(cmd) => key::run(&data_dir, cmd),
    }
}
