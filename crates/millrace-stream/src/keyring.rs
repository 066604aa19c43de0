//! The keyring: the local stand-in for KMS that names the keys streams are encrypted under.
//!
//! ```toml
//! [[key]]
//! id = "alias/churn"                  # what StartStreamEncryption's KeyId names
//! aliases = ["arn:aws:kms:us-east-1:000000000000:alias/churn"]
//! material = "base64 of 32 random bytes"
//! created = "2026-12-06T06:30:00Z"
//! ```
//!
//! A KeyId matches a key by its `id` or one of its `aliases`, also in ARN form
//! (`arn:aws:kms:REGION:ACCOUNT:key/ID` is `ID`, `…:alias/NAME` is `alias/NAME`), as KMS
//! accepts all four forms. The keys AWS manages (`alias/aws/kinesis`, `alias/aws/firehose`) are
//! made on first use. The file holds key material, so it must be private: it is written with mode 0600
//! and refused when group or others may read it. Keep it off the disk the data is on (`[encryption]
//! keyring`) where the threat is a copied data disk or backup.
//!
//! Segments name the key of each sealed record by its fingerprint (8 bytes of an HMAC of the
//! material), never by its id: renaming a key keeps its records readable, and a keyring whose
//! material changed under the same id finds no key for them (a clear error, not garbage).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;

/// The prefix of the keys AWS manages for its services (`alias/aws/kinesis`,
/// `alias/aws/firehose`): a customer cannot make one, so these are made on first use.
pub const AWS_MANAGED_PREFIX: &str = "alias/aws/";

const MATERIAL_LEN: usize = 32;

/// What can go wrong with the keyring or a key in it.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read or write the keyring {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid keyring {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the keyring {path} may be read by others (mode {mode:o}): it holds key material; \
         chmod 600 it"
    )]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error(
        "Key '{key_id}' does not exist in the keyring {path}: add it with `millrace key add \
         {key_id} --keyring {path}`"
    )]
    KeyNotFound { key_id: String, path: PathBuf },
    #[error(
        "records were sealed under the key with fingerprint {fingerprint}, which is not in the \
         keyring {path} (a missing or replaced key)"
    )]
    FingerprintNotFound { fingerprint: String, path: PathBuf },
    #[error("the keyring {path} already has a key named '{key_id}'")]
    Exists { key_id: String, path: PathBuf },
}

/// One key: its names and its material.
pub struct MasterKey {
    pub id: String,
    pub aliases: Vec<String>,
    pub created: Option<String>,
    fingerprint: [u8; 8],
    material: [u8; MATERIAL_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("fingerprint", &self.fingerprint_hex())
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    fn new(id: String, aliases: Vec<String>, created: Option<String>, material: [u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&material).expect("any key length");
        mac.update(b"millrace keyring fingerprint v1");
        let digest = mac.finalize().into_bytes();
        Self {
            id,
            aliases,
            created,
            fingerprint: digest[..8].try_into().expect("8 of 32 bytes"),
            material,
        }
    }

    pub(crate) fn fingerprint(&self) -> [u8; 8] {
        self.fingerprint
    }

    pub fn fingerprint_hex(&self) -> String {
        hex(&self.fingerprint)
    }

    /// The AES-256-GCM key for one context (a shard of one stream incarnation): HKDF-SHA256
    /// of the material, so no two shards share a key and nonces only need to be unique within
    /// a shard.
    pub(crate) fn derive(&self, context: &[u8]) -> LessSafeKey {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"millrace segment v1"), &self.material);
        let mut okm = [0u8; 32];
        hk.expand(context, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &okm).expect("a 32-byte AES-256 key"))
    }

    fn answers_to(&self, key_id: &str) -> bool {
        let want = normalize(key_id);
        normalize(&self.id) == want || self.aliases.iter().any(|a| normalize(a) == want)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A KeyId in any of KMS's forms, reduced to a key id or an alias name.
fn normalize(key_id: &str) -> &str {
    let Some(rest) = key_id.strip_prefix("arn:") else {
        return key_id;
    };
    // arn:PARTITION:kms:REGION:ACCOUNT:RESOURCE
    match rest.splitn(5, ':').nth(4) {
        Some(resource) => resource.strip_prefix("key/").unwrap_or(resource),
        None => key_id,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    key: Vec<FileKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    material: String,
    #[serde(default)]
    created: Option<String>,
}

/// The keyring file, read when a key is first needed and again whenever one is missing (so a
/// key added by `millrace key add` to a running server's keyring is found).
#[derive(Debug)]
pub struct Keyring {
    path: PathBuf,
    keys: Mutex<Option<Arc<Vec<Arc<MasterKey>>>>>,
}

impl Keyring {
    /// The keyring at `path`; nothing is read until a key is needed. A missing file is an empty
    /// keyring.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            keys: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every key, read from the file now.
    pub fn list(&self) -> Result<Vec<Arc<MasterKey>>, KeyringError> {
        Ok(self.reload()?.to_vec())
    }

    /// The key a KeyId names.
    pub fn resolve(&self, key_id: &str) -> Result<Arc<MasterKey>, KeyringError> {
        let find = |keys: &[Arc<MasterKey>]| keys.iter().find(|k| k.answers_to(key_id)).cloned();
        if let Some(k) = find(&self.cached()?) {
            return Ok(k);
        }
        find(&self.reload()?).ok_or_else(|| KeyringError::KeyNotFound {
            key_id: key_id.to_owned(),
            path: self.path.clone(),
        })
    }

    /// As [`Keyring::resolve`], making an AWS managed key (`alias/aws/…`) on first use as AWS
    /// does (only when encryption is started: a stream that already names a key never gets a
    /// new one).
    pub fn resolve_or_make(&self, key_id: &str) -> Result<Arc<MasterKey>, KeyringError> {
        match self.resolve(key_id) {
            Err(KeyringError::KeyNotFound { .. })
                if normalize(key_id).starts_with(AWS_MANAGED_PREFIX) =>
            {
                match self.add(normalize(key_id), &[]) {
                    // Made by someone else meanwhile: theirs.
                    Err(KeyringError::Exists { .. }) => self.resolve(key_id),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// The key whose fingerprint is `fingerprint` (what a sealed record names).
    pub(crate) fn by_fingerprint(
        &self,
        fingerprint: [u8; 8],
    ) -> Result<Arc<MasterKey>, KeyringError> {
        let find =
            |keys: &[Arc<MasterKey>]| keys.iter().find(|k| k.fingerprint == fingerprint).cloned();
        if let Some(k) = find(&self.cached()?) {
            return Ok(k);
        }
        find(&self.reload()?).ok_or_else(|| KeyringError::FingerprintNotFound {
            fingerprint: hex(&fingerprint),
            path: self.path.clone(),
        })
    }

    /// Adds a key with fresh random material under `id` (and `aliases`), keeping the file's
    /// text and comments: the new `[[key]]` table is appended. The file is created private.
    pub fn add(&self, id: &str, aliases: &[String]) -> Result<Arc<MasterKey>, KeyringError> {
        let mut guard = self.keys.lock();
        let keys = self.read_file()?;
        for name in std::iter::once(id).chain(aliases.iter().map(String::as_str)) {
            if name.trim().is_empty() {
                return Err(self.invalid("a key id or alias is empty".into()));
            }
            if keys.iter().any(|k| k.answers_to(name)) {
                return Err(KeyringError::Exists {
                    key_id: name.to_owned(),
                    path: self.path.clone(),
                });
            }
        }
        let mut material = [0u8; MATERIAL_LEN];
        rand::rng().fill_bytes(&mut material);
        let created = millrace_common::time::rfc3339(millrace_common::time::now_ms());
        let mut text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KEYRING_HEADER.to_owned(),
            Err(source) => return Err(self.io(source)),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
        text.push_str(&format!(
            "\n[[key]]\nid = {}\naliases = [{}]\nmaterial = {}\ncreated = {}\n",
            quote(id),
            aliases
                .iter()
                .map(|a| quote(a))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&B64.encode(material)),
            quote(&created),
        ));
        millrace_common::durable::write_private_file(&self.path, text.as_bytes())
            .map_err(|e| self.io(e))?;
        let key = Arc::new(MasterKey::new(
            id.to_owned(),
            aliases.to_vec(),
            Some(created),
            material,
        ));
        let mut all = keys.to_vec();
        all.push(key.clone());
        *guard = Some(Arc::new(all));
        Ok(key)
    }

    fn cached(&self) -> Result<Arc<Vec<Arc<MasterKey>>>, KeyringError> {
        let mut guard = self.keys.lock();
        if let Some(keys) = &*guard {
            return Ok(keys.clone());
        }
        let keys = self.read_file()?;
        *guard = Some(keys.clone());
        Ok(keys)
    }

    fn reload(&self) -> Result<Arc<Vec<Arc<MasterKey>>>, KeyringError> {
        let mut guard = self.keys.lock();
        let keys = self.read_file()?;
        *guard = Some(keys.clone());
        Ok(keys)
    }

    fn read_file(&self) -> Result<Arc<Vec<Arc<MasterKey>>>, KeyringError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::default()),
            Err(source) => return Err(self.io(source)),
        };
        self.check_private()?;
        let doc: FileDoc = toml::from_str(&text).map_err(|e| self.invalid(e.to_string()))?;
        let mut keys: Vec<Arc<MasterKey>> = Vec::with_capacity(doc.key.len());
        for (i, k) in doc.key.into_iter().enumerate() {
            let at = format!("key[{i}] ('{}')", k.id);
            if k.id.trim().is_empty() {
                return Err(self.invalid(format!("key[{i}].id is empty")));
            }
            let material: [u8; MATERIAL_LEN] = B64
                .decode(k.material.trim())
                .ok()
                .and_then(|m| m.try_into().ok())
                .ok_or_else(|| {
                    self.invalid(format!(
                        "{at}.material is not the base64 of {MATERIAL_LEN} bytes"
                    ))
                })?;
            for name in std::iter::once(&k.id).chain(&k.aliases) {
                if keys.iter().any(|o| o.answers_to(name)) {
                    return Err(self.invalid(format!("{at}: the name '{name}' is used twice")));
                }
            }
            keys.push(Arc::new(MasterKey::new(
                k.id, k.aliases, k.created, material,
            )));
        }
        Ok(Arc::new(keys))
    }

    fn check_private(&self) -> Result<(), KeyringError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.path)
            .map_err(|e| self.io(e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyringError::NotPrivate {
                path: self.path.clone(),
                mode: mode & 0o777,
            });
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> KeyringError {
        KeyringError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn invalid(&self, message: String) -> KeyringError {
        KeyringError::Invalid {
            path: self.path.clone(),
            message,
        }
    }
}

const KEYRING_HEADER: &str = "# millrace keyring: the keys streams are encrypted under \
(StartStreamEncryption's KeyId).\n# Key material: keep this file private (mode 0600) and \
backed up apart from the data.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_keys_resolve_by_every_form_of_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::at(dir.path().join("keyring.toml"));
        let k = ring.add("1234abcd-12ab", &["alias/churn".into()]).unwrap();
        let again = Keyring::at(ring.path());
        for name in [
            "1234abcd-12ab",
            "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab",
            "alias/churn",
            "arn:aws:kms:us-east-1:000000000000:alias/churn",
        ] {
            assert_eq!(
                again.resolve(name).unwrap().fingerprint,
                k.fingerprint,
                "{name}"
            );
        }
        assert!(matches!(
            again.resolve("alias/other"),
            Err(KeyringError::KeyNotFound { .. })
        ));
        assert!(matches!(
            again.add("alias/churn", &[]),
            Err(KeyringError::Exists { .. })
        ));
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(ring.path()).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_aws_managed_key_is_made_on_first_use_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        assert!(Keyring::at(&path).resolve("alias/aws/kinesis").is_err());
        let first = Keyring::at(&path)
            .resolve_or_make("alias/aws/kinesis")
            .unwrap();
        let second = Keyring::at(&path).resolve("alias/aws/kinesis").unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(Keyring::at(&path).list().unwrap().len(), 1);
    }

    #[test]
    fn a_readable_or_malformed_keyring_is_refused_with_its_reason() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        Keyring::at(&path).add("k", &[]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::at(&path).resolve("k").unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::write(&path, "[[key]]\nid = \"k\"\nmaterial = \"c2hvcnQ=\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Keyring::at(&path).resolve("k").unwrap_err();
        assert!(err.to_string().contains("key[0] ('k').material"), "{err}");
    }

    #[test]
    fn comments_survive_an_add() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::at(dir.path().join("keyring.toml"));
        ring.add("a", &[]).unwrap();
        let text = std::fs::read_to_string(ring.path()).unwrap();
        assert!(text.starts_with("# millrace keyring"));
        std::fs::write(ring.path(), format!("# mine\n{text}")).unwrap();
        ring.add("b", &[]).unwrap();
        let text = std::fs::read_to_string(ring.path()).unwrap();
        assert!(text.starts_with("# mine\n"));
        assert_eq!(ring.list().unwrap().len(), 2);
    }
}
