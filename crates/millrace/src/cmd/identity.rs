//! `millrace identity`: the principals of an identities file (`[auth] identities`), their
//! access keys and policies. The rules (sealing, checks) are `millrace_auth::identities`'.

use std::path::PathBuf;

use anyhow::Context;
use millrace_auth::identities;

#[derive(Debug, clap::Subcommand)]
pub enum IdentityCommand {
    /// Add a principal with a new access key (or, for one that exists, another key: key
    /// rotation), attaching each --policy. Prints one JSON object, as IAM's CreateAccessKey
    /// does: UserName, AccessKeyId, SecretAccessKey (shown only now), Status, CreateDate.
    ///
    /// Creates the identities file and its key file (FILE with extension .key, mode 0600)
    /// when missing. The secret is stored sealed with AES-256-GCM under that key: the
    /// identities file alone reveals no secret. A running `millrace up` picks the change up
    /// within seconds.
    ///
    /// Example: millrace identity add producer --identities identities.toml --policy
    ///   examples/policies/producer.json
    Add {
        /// The principal's name (IAM's user name rule: letters, digits, +=,.@_-).
        name: String,
        #[arg(long, env = "MILLRACE_IDENTITIES", default_value = "identities.toml")]
        identities: PathBuf,
        /// An IAM policy document (JSON) to attach; repeat for several. Checked before
        /// anything is written.
        #[arg(long = "policy")]
        policies: Vec<PathBuf>,
    },
    /// The principals, their access key ids and how many policies each has (as JSON lines).
    /// Secrets are never shown.
    List {
        #[arg(long, env = "MILLRACE_IDENTITIES", default_value = "identities.toml")]
        identities: PathBuf,
    },
}

pub fn run(cmd: IdentityCommand) -> anyhow::Result<()> {
    match cmd {
        IdentityCommand::Add {
            name,
            identities,
            policies,
        } => {
            let texts = policies
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading policy {}", p.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key = identities::add(&identities, &name, &texts)?;
            println!("{}", serde_json::to_string(&key)?);
            Ok(())
        }
        IdentityCommand::List { identities } => {
            for p in identities::list(&identities)? {
                println!("{}", serde_json::to_string(&p)?);
            }
            Ok(())
        }
    }
}
