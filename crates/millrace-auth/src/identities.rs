//! The identities file: principals, their access keys and the IAM policies attached to them.
//!
//! ```toml
//! [[principal]]
//! name = "producer"
//! policies = ['''{"Version": "2012-10-17", "Statement": [...]}''']
//!
//! [[principal.key]]
//! access_key_id = "AKIA…"
//! secret = "aes-256-gcm:…"        # sealed, never the secret itself
//! created = "2026-12-06T02:40:00Z"
//! ```
//!
//! **Why secrets are sealed, not hashed.** SigV4 proves knowledge of the secret by an HMAC
//! keyed with it; to check one the server must compute the same HMAC, so it needs the secret
//! itself — a hash could not verify anything (AWS keeps secrets recoverable too). Each secret
//! is therefore encrypted with AES-256-GCM under a 32-byte key kept in a separate file beside
//! it (`identities.key` for `identities.toml`, mode 0600), with the access key id as
//! associated data, so a sealed secret moved to another key id does not open. The identities
//! file alone (in a repository, a backup, a review) reveals no secret; the key file must be
//! guarded like the secrets themselves.
//!
//! `millrace identity add` edits the file in place with toml_edit, keeping its comments.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use serde::Deserialize;

use crate::policy::Policy;

const SEALED_PREFIX: &str = "aes-256-gcm:";
const NONCE_LEN: usize = 12;

/// Why the identities file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum IdentitiesError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path} holds sealed secrets but its key file {key} is missing; the secrets cannot be \
         opened without it (restore it, or remove the keys and add new ones)"
    )]
    MissingKey { path: PathBuf, key: PathBuf },
    #[error(
        "{path}: the secret of access key {access_key_id} does not open with the key in {key} \
         (a different key file, or an edited secret)"
    )]
    WrongKey {
        path: PathBuf,
        key: PathBuf,
        access_key_id: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default, rename = "principal")]
    principals: Vec<PrincipalDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalDoc {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default, rename = "key")]
    keys: Vec<KeyDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    access_key_id: String,
    secret: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// A principal (an IAM user) and its policies.
#[derive(Debug)]
pub struct Principal {
    pub name: String,
    /// `arn:aws:iam::ACCOUNT:user/NAME`.
    pub arn: String,
    pub account: String,
    pub policies: Vec<Policy>,
}

/// One principal as `millrace identity list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub user_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub access_keys: Vec<KeySummary>,
    pub policies: usize,
}

/// One access key as `millrace identity list` shows it (IAM's AccessKeyMetadata).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySummary {
    pub access_key_id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_date: Option<String>,
}

/// A new access key, as IAM's CreateAccessKey returns it: the only time the secret is shown.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewKey {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub status: &'static str,
    pub create_date: String,
}

/// The identities file, loaded: every active key's secret opened, every policy parsed.
#[derive(Debug, Default)]
pub struct Identities {
    keys: HashMap<String, (Arc<Principal>, String)>,
    principals: Vec<Arc<Principal>>,
}

impl Identities {
    /// Loads `path`, naming principals' ARNs in `account`.
    pub fn load(path: &Path, account: &str) -> Result<Self, IdentitiesError> {
        let doc = read_doc(path)?;
        let sealer = if doc.principals.iter().any(|p| !p.keys.is_empty()) {
            Some(Sealer::open(path)?)
        } else {
            None
        };
        let mut out = Identities::default();
        for p in doc.principals {
            let policies = p
                .policies
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    Policy::parse(text).map_err(|e| {
                        invalid(
                            path,
                            format!("principal '{}', policy {}: {e}", p.name, i + 1),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let principal = Arc::new(Principal {
                arn: format!("arn:aws:iam::{account}:user/{}", p.name),
                account: account.to_owned(),
                name: p.name,
                policies,
            });
            for k in p.keys.iter().filter(|k| k.active) {
                let sealer = sealer.as_ref().expect("opened when any key exists");
                let secret = sealer.open_secret(path, &k.access_key_id, &k.secret)?;
                out.keys
                    .insert(k.access_key_id.clone(), (principal.clone(), secret));
            }
            out.principals.push(principal);
        }
        Ok(out)
    }

    /// The principal holding `access_key_id` (active) and its secret.
    pub fn lookup(&self, access_key_id: &str) -> Option<(&Arc<Principal>, &str)> {
        self.keys
            .get(access_key_id)
            .map(|(p, secret)| (p, secret.as_str()))
    }

    pub fn principals(&self) -> &[Arc<Principal>] {
        &self.principals
    }
}

fn invalid(path: &Path, message: String) -> IdentitiesError {
    IdentitiesError::Invalid {
        path: path.to_owned(),
        message,
    }
}

fn read_text(path: &Path) -> Result<String, IdentitiesError> {
    std::fs::read_to_string(path).map_err(|source| IdentitiesError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_doc(path: &Path) -> Result<FileDoc, IdentitiesError> {
    let doc: FileDoc =
        toml::from_str(&read_text(path)?).map_err(|e| invalid(path, e.message().to_owned()))?;
    let mut names = std::collections::HashSet::new();
    let mut key_ids = std::collections::HashSet::new();
    for p in &doc.principals {
        check_name(&p.name).map_err(|m| invalid(path, m))?;
        if !names.insert(p.name.as_str()) {
            return Err(invalid(
                path,
                format!("principal '{}' is listed twice", p.name),
            ));
        }
        for k in &p.keys {
            if !key_ids.insert(k.access_key_id.as_str()) {
                return Err(invalid(
                    path,
                    format!("access key {} is listed twice", k.access_key_id),
                ));
            }
        }
    }
    Ok(doc)
}

/// IAM's user name rule: 1 to 64 of letters, digits and `+=,.@_-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "principal name '{name}' must be 1 to 64 letters, digits or +=,.@_- (IAM's user \
             name rule)"
        ))
    }
}

/// The key file beside an identities file: `identities.key` for `identities.toml`.
pub fn key_path(path: &Path) -> PathBuf {
    path.with_extension("key")
}

/// The AES-256-GCM key that seals the secrets.
struct Sealer {
    cipher: Aes256Gcm,
    key_path: PathBuf,
}

impl Sealer {
    /// Opens the key file beside `path`.
    fn open(path: &Path) -> Result<Self, IdentitiesError> {
        let key_path = key_path(path);
        let text = match std::fs::read_to_string(&key_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IdentitiesError::MissingKey {
                    path: path.to_owned(),
                    key: key_path,
                });
            }
            Err(source) => {
                return Err(IdentitiesError::Io {
                    path: key_path,
                    source,
                });
            }
        };
        let bytes = B64
            .decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                invalid(
                    &key_path,
                    "not a key file: expected 32 bytes in base64 on one line".into(),
                )
            })?;
        Ok(Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).expect("32 bytes"),
            key_path,
        })
    }

    /// Opens the key file beside `path`, creating one (0600) if there is none.
    fn open_or_create(path: &Path) -> Result<Self, IdentitiesError> {
        let key_path = key_path(path);
        if !key_path.exists() {
            let key: [u8; 32] = rand::rng().random();
            let text = format!("{}\n", B64.encode(key));
            millrace_common::durable::write_private_file(&key_path, text.as_bytes()).map_err(
                |source| IdentitiesError::Io {
                    path: key_path.clone(),
                    source,
                },
            )?;
        }
        Self::open(path)
    }

    fn seal(&self, access_key_id: &str, secret: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: access_key_id.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message under 64 GiB");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", B64.encode(bytes))
    }

    fn open_secret(
        &self,
        path: &Path,
        access_key_id: &str,
        sealed: &str,
    ) -> Result<String, IdentitiesError> {
        let wrong = || IdentitiesError::WrongKey {
            path: path.to_owned(),
            key: self.key_path.clone(),
            access_key_id: access_key_id.to_owned(),
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(wrong)?;
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: access_key_id.as_bytes(),
                },
            )
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }
}

/// Adds `name` to the identities file at `path` (creating the file and its key file if
/// missing) with a new access key, attaching `policies` (JSON documents, checked first). A
/// principal that exists gets another key and the policies appended: key rotation.
pub fn add(path: &Path, name: &str, policies: &[String]) -> Result<NewKey, IdentitiesError> {
    check_name(name).map_err(|m| invalid(path, m))?;
    for (i, text) in policies.iter().enumerate() {
        Policy::parse(text).map_err(|e| invalid(path, format!("policy {}: {e}", i + 1)))?;
    }
    let text = if path.exists() {
        read_doc(path)?;
        read_text(path)?
    } else {
        "# millrace identities: principals, their sealed access keys and IAM policies.\n\
         # Written by `millrace identity add`; the secrets open only with the key file beside \
         this one.\n"
            .to_owned()
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| invalid(path, e.to_string()))?;
    let sealer = Sealer::open_or_create(path)?;
    let key = NewKey {
        user_name: name.to_owned(),
        access_key_id: new_access_key_id(),
        secret_access_key: new_secret(),
        status: "Active",
        create_date: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let principals = doc
        .entry("principal")
        .or_insert(toml_edit::Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .ok_or_else(|| invalid(path, "'principal' must be an array of tables".into()))?;
    let found = principals
        .iter()
        .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name));
    let index = match found {
        Some(i) => i,
        None => {
            let mut t = toml_edit::Table::new();
            t["name"] = toml_edit::value(name);
            principals.push(t);
            principals.len() - 1
        }
    };
    let table = principals.get_mut(index).expect("found or pushed");
    if !policies.is_empty() {
        let list = table
            .entry("policies")
            .or_insert(toml_edit::value(toml_edit::Array::new()))
            .as_array_mut()
            .ok_or_else(|| invalid(path, format!("principal '{name}': policies must be a list")))?;
        for p in policies {
            list.push(p.trim());
        }
    }
    let mut k = toml_edit::Table::new();
    k["access_key_id"] = toml_edit::value(&key.access_key_id);
    k["secret"] = toml_edit::value(sealer.seal(&key.access_key_id, &key.secret_access_key));
    k["created"] = toml_edit::value(&key.create_date);
    table
        .entry("key")
        .or_insert(toml_edit::Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .ok_or_else(|| {
            invalid(
                path,
                format!("principal '{name}': key must be an array of tables"),
            )
        })?
        .push(k);
    let out = doc.to_string();
    // What was written must load (its policies parse, its secrets open).
    millrace_common::durable::write_private_file(path, out.as_bytes()).map_err(|source| {
        IdentitiesError::Io {
            path: path.to_owned(),
            source,
        }
    })?;
    Identities::load(path, "000000000000")?;
    Ok(key)
}

/// The principals in the file (no key file needed: secrets stay sealed).
pub fn list(path: &Path) -> Result<Vec<Summary>, IdentitiesError> {
    Ok(read_doc(path)?
        .principals
        .into_iter()
        .map(|p| Summary {
            user_name: p.name,
            description: p.description,
            access_keys: p
                .keys
                .into_iter()
                .map(|k| KeySummary {
                    access_key_id: k.access_key_id,
                    status: if k.active { "Active" } else { "Inactive" },
                    create_date: k.created,
                })
                .collect(),
            policies: p.policies.len(),
        })
        .collect())
}

/// `AKIA` and 16 of IAM's key id characters (A–Z, 2–7).
fn new_access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("AKIA{tail}")
}

/// 40 characters of base64 (30 random bytes), the form of an AWS secret access key.
fn new_secret() -> String {
    let bytes: [u8; 30] = rand::rng().random();
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    #[test]
    fn added_keys_load_and_their_secrets_are_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identities.toml");
        let k = add(&path, "admin", &[ALLOW_ALL.to_owned()]).unwrap();
        assert!(k.access_key_id.starts_with("AKIA") && k.access_key_id.len() == 20);
        assert_eq!(k.secret_access_key.len(), 40);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&k.secret_access_key), "{text}");
        let ids = Identities::load(&path, "123456789012").unwrap();
        let (p, secret) = ids.lookup(&k.access_key_id).unwrap();
        assert_eq!(secret, k.secret_access_key);
        assert_eq!(p.arn, "arn:aws:iam::123456789012:user/admin");
        assert_eq!(p.policies.len(), 1);
        // A second key for the same principal: rotation, not a second principal.
        let k2 = add(&path, "admin", &[]).unwrap();
        let ids = Identities::load(&path, "123456789012").unwrap();
        assert_eq!(ids.principals().len(), 1);
        assert!(ids.lookup(&k2.access_key_id).is_some() && ids.lookup(&k.access_key_id).is_some());
        let listed = list(&path).unwrap();
        assert_eq!(listed[0].access_keys.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&path))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
        }
    }

    #[test]
    fn comments_survive_an_add_and_bad_policies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.toml");
        std::fs::write(
            &path,
            "# the team's roles\n[[principal]]\nname = \"reader\"\n",
        )
        .unwrap();
        add(&path, "writer", &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# the team's roles"), "{text}");
        let err = add(&path, "x", &["{\"Statement\": 3}".into()]).unwrap_err();
        assert!(err.to_string().contains("policy 1"), "{err}");
        let err = add(&path, "no/slash", &[]).unwrap_err();
        assert!(err.to_string().contains("IAM"), "{err}");
    }

    #[test]
    fn a_wrong_or_missing_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identities.toml");
        let k = add(&path, "a", &[]).unwrap();
        let other = dir.path().join("other.toml");
        add(&other, "b", &[]).unwrap();
        std::fs::copy(key_path(&other), key_path(&path)).unwrap();
        let err = Identities::load(&path, "0").unwrap_err();
        assert!(
            matches!(&err, IdentitiesError::WrongKey { access_key_id, .. } if *access_key_id == k.access_key_id),
            "{err}"
        );
        std::fs::remove_file(key_path(&path)).unwrap();
        let err = Identities::load(&path, "0").unwrap_err();
        assert!(matches!(err, IdentitiesError::MissingKey { .. }), "{err}");
    }

    #[test]
    fn a_sealed_secret_moved_to_another_key_id_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identities.toml");
        let a = add(&path, "a", &[]).unwrap();
        let b = add(&path, "b", &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let swapped = text
            .replace(&a.access_key_id, "TMP")
            .replace(&b.access_key_id, &a.access_key_id)
            .replace("TMP", &b.access_key_id);
        std::fs::write(&path, swapped).unwrap();
        assert!(matches!(
            Identities::load(&path, "0"),
            Err(IdentitiesError::WrongKey { .. })
        ));
    }
}
