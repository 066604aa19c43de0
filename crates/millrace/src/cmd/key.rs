//! `millrace key`: the keyring that encryption at rest takes its keys from (`[encryption]
//! keyring`, default DATA_DIR/state/keyring.toml). The rules are `millrace_stream::keyring`'s.

use std::path::PathBuf;

use millrace_common::layout::DataDir;
use millrace_stream::Keyring;

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Add a key with 32 fresh random bytes under ID (and each --alias), for
    /// StartStreamEncryption's KeyId: a key id, an alias (alias/NAME) or either's ARN. Prints
    /// one JSON object: KeyId, Aliases, Fingerprint, CreationDate (never the material).
    ///
    /// Creates the keyring (mode 0600) when missing. A running `millrace up` finds the new key
    /// on its next StartStreamEncryption. `alias/aws/kinesis` needs no add: it is made on first
    /// use, as AWS makes its managed key.
    ///
    /// Example: millrace key add alias/churn
    Add {
        id: String,
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// The keyring file (default: DATA_DIR/state/keyring.toml, what `up` uses without
        /// `[encryption] keyring`).
        #[arg(long, env = "MILLRACE_KEYRING")]
        keyring: Option<PathBuf>,
    },
    /// The keys: id, aliases, fingerprint and creation date, as JSON lines.
    List {
        #[arg(long, env = "MILLRACE_KEYRING")]
        keyring: Option<PathBuf>,
    },
}

pub fn run(data_dir: &DataDir, cmd: KeyCommand) -> anyhow::Result<()> {
    let ring = |path: Option<PathBuf>| Keyring::at(path.unwrap_or_else(|| data_dir.keyring()));
    match cmd {
        KeyCommand::Add {
            id,
            aliases,
            keyring,
        } => {
            let key = ring(keyring).add(&id, &aliases)?;
            println!("{}", describe(&key));
        }
        KeyCommand::List { keyring } => {
            for key in ring(keyring).list()? {
                println!("{}", describe(&key));
            }
        }
    }
    Ok(())
}

fn describe(key: &millrace_stream::MasterKey) -> serde_json::Value {
    serde_json::json!({
        "KeyId": key.id,
        "Aliases": key.aliases,
        "Fingerprint": key.fingerprint_hex(),
        "CreationDate": key.created,
    })
}
