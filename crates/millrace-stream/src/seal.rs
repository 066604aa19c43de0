//! Encryption at rest: which key a stream's new records are sealed under, and sealing and
//! opening the entries of one shard.
//!
//! A sealed entry keeps the frame and the header of a plain one (so recovery, retention and
//! positioning by time need no key) and replaces `key | data` with
//!
//! ```text
//! fingerprint (8) | epoch (4) | AES-256-GCM(key | data) | tag (16)
//! ```
//!
//! marked by the top bit of the key length. The cipher key is derived per shard
//! ([`MasterKey::derive`] over the stream's name, creation time and the shard index), and the
//! nonce is `epoch | counter`: counters never repeat within a shard, and the epoch, drawn at
//! random each time a shard's writer starts, keeps a counter that a crash cut off and the
//! restart wrote again from ever sharing a nonce. The header (counter, arrival time, key
//! length, fingerprint, epoch) is the associated data: none of it can be altered or moved to
//! another record unnoticed. Records written before StartStreamEncryption stay plain, and those
//! after StopStreamEncryption are plain, as with Kinesis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, Tag};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::error::{Result, StreamError};
use crate::keyring::{Keyring, MasterKey, hex};
use crate::meta::Encryption;
use crate::segment::Sealed;

/// Bytes a sealed entry adds to a plain one: fingerprint, epoch and tag.
pub(crate) const OVERHEAD: usize = 8 + 4 + 16;

/// What new records of a stream are written as.
#[derive(Debug, Clone)]
enum Writing {
    Plain,
    Sealed(Arc<MasterKey>),
    /// Encryption is on but its key cannot be had (missing from the keyring, or the keyring
    /// unreadable): appends are refused with the reason rather than written in the clear, and
    /// the key is looked for again at most once a second, so a key put back is used without a
    /// restart.
    Unavailable {
        key_id: String,
        error: Arc<StreamError>,
        tried: Instant,
    },
}

/// How often a stream whose key is missing looks for it again.
const RETRY_KEY: Duration = Duration::from_secs(1);

/// A stream's encryption state, shared by its shards.
#[derive(Debug)]
pub(crate) struct StreamSeal {
    keyring: Option<Arc<Keyring>>,
    writing: RwLock<Writing>,
}

impl StreamSeal {
    /// The state for a stream with `encryption` on (or off). A key that cannot be had is not an
    /// error here: the stream opens, its plain records stay readable, and appends say why.
    pub(crate) fn new(keyring: Option<Arc<Keyring>>, encryption: Option<&Encryption>) -> Self {
        let writing = match encryption {
            None => Writing::Plain,
            Some(e) => look_up(keyring.as_deref(), &e.key_id),
        };
        Self {
            keyring,
            writing: RwLock::new(writing),
        }
    }

    /// The key a KeyId names (StartStreamEncryption); `alias/aws/kinesis` is made on first use.
    pub(crate) fn resolve(&self, key_id: &str) -> Result<Arc<MasterKey>> {
        Ok(ring(self.keyring.as_deref(), key_id)?.resolve_or_make(key_id)?)
    }

    /// New records are sealed under `key`, or written plain with `None`.
    pub(crate) fn set(&self, key: Option<Arc<MasterKey>>) {
        *self.writing.write() = match key {
            Some(k) => Writing::Sealed(k),
            None => Writing::Plain,
        };
    }

    /// The key new records are sealed under, `None` for plain, or why they cannot be written.
    fn writing_key(&self) -> Result<Option<Arc<MasterKey>>> {
        let writing = self.writing.read().clone();
        match writing {
            Writing::Plain => Ok(None),
            Writing::Sealed(k) => Ok(Some(k)),
            Writing::Unavailable { key_id, tried, .. } if tried.elapsed() >= RETRY_KEY => {
                let now = look_up(self.keyring.as_deref(), &key_id);
                let mut w = self.writing.write();
                // Unless StartStreamEncryption or StopStreamEncryption changed it meanwhile.
                if matches!(&*w, Writing::Unavailable { key_id: k, .. } if *k == key_id) {
                    *w = now;
                }
                drop(w);
                self.writing_key_now()
            }
            Writing::Unavailable { error, .. } => Err(error.duplicate()),
        }
    }

    fn writing_key_now(&self) -> Result<Option<Arc<MasterKey>>> {
        match &*self.writing.read() {
            Writing::Plain => Ok(None),
            Writing::Sealed(k) => Ok(Some(k.clone())),
            Writing::Unavailable { error, .. } => Err(error.duplicate()),
        }
    }
}

fn ring<'a>(keyring: Option<&'a Keyring>, key_id: &str) -> Result<&'a Keyring> {
    keyring.ok_or_else(|| {
        StreamError::KeyUnavailable(format!(
            "KeyId {key_id}: this store has no keyring configured"
        ))
    })
}

/// The writing state for a stream encrypted under `key_id`: never makes a key (a keyring that
/// lost its keys must not be papered over with new ones).
fn look_up(keyring: Option<&Keyring>, key_id: &str) -> Writing {
    match ring(keyring, key_id).and_then(|r| Ok(r.resolve(key_id)?)) {
        Ok(k) => Writing::Sealed(k),
        Err(error) => {
            tracing::error!(key = %key_id, %error, "a stream's encryption key is unavailable: its appends are refused");
            Writing::Unavailable {
                key_id: key_id.to_owned(),
                error: Arc::new(error),
                tried: Instant::now(),
            }
        }
    }
}

/// The cipher new entries of one commit are sealed with.
pub(crate) struct Sealer {
    fingerprint: [u8; 8],
    epoch: u32,
    cipher: Arc<LessSafeKey>,
}

impl Sealer {
    /// Seals `plain` (`key | data`, already in place) for the entry `counter`; `aad` is the
    /// entry's header up to and including the epoch. Returns the tag to append.
    pub(crate) fn seal(&self, counter: u64, aad: &[u8], plain: &mut [u8]) -> [u8; 16] {
        let tag: Tag = self
            .cipher
            .seal_in_place_separate_tag(nonce(self.epoch, counter), Aad::from(aad), plain)
            .expect("AES-GCM seals any length a segment entry can have");
        tag.as_ref().try_into().expect("a 16-byte tag")
    }

    pub(crate) fn fingerprint(&self) -> [u8; 8] {
        self.fingerprint
    }

    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }
}

fn nonce(epoch: u32, counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&epoch.to_le_bytes());
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// One shard's view of its stream's encryption: derives and caches its per-shard ciphers.
pub(crate) struct ShardSeal {
    stream: Arc<StreamSeal>,
    /// Derivation context: the stream's name, its creation time and the shard index.
    context: Vec<u8>,
    /// Drawn when the shard opens; part of every nonce its writer uses.
    epoch: u32,
    ciphers: Mutex<Vec<([u8; 8], Arc<LessSafeKey>)>>,
    /// Where the error messages say the records live.
    shard: String,
}

impl std::fmt::Debug for ShardSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSeal")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl ShardSeal {
    pub(crate) fn new(stream: Arc<StreamSeal>, name: &str, created_ms: i64, index: u32) -> Self {
        let mut context = Vec::with_capacity(name.len() + 32);
        context.extend_from_slice(b"stream\0");
        context.extend_from_slice(name.as_bytes());
        context.push(0);
        context.extend_from_slice(&created_ms.to_le_bytes());
        context.extend_from_slice(&index.to_le_bytes());
        Self {
            stream,
            context,
            epoch: rand::random(),
            ciphers: Mutex::new(Vec::new()),
            shard: format!("shard {index} of stream {name}"),
        }
    }

    /// A shard of a store without encryption (tests).
    #[cfg(test)]
    pub(crate) fn plain() -> Arc<Self> {
        Arc::new(Self::new(Arc::new(StreamSeal::new(None, None)), "t", 0, 0))
    }

    /// A shard whose stream seals new records under a fresh key in the keyring at `path`
    /// (tests).
    #[cfg(test)]
    pub(crate) fn sealed_for_test(path: &std::path::Path) -> Arc<Self> {
        let ring = Arc::new(Keyring::at(path));
        let stream = StreamSeal::new(Some(ring.clone()), None);
        stream.set(Some(ring.add("test", &[]).unwrap()));
        Arc::new(Self::new(Arc::new(stream), "t", 0, 0))
    }

    /// How the next commit writes: `None` plain, a sealer, or the reason it cannot write.
    pub(crate) fn for_writing(&self) -> Result<Option<Sealer>> {
        Ok(self.stream.writing_key()?.map(|key| Sealer {
            fingerprint: key.fingerprint(),
            epoch: self.epoch,
            cipher: self.cipher(&key),
        }))
    }

    /// The partition key and data of a sealed entry.
    pub(crate) fn open(&self, counter: u64, sealed: &Sealed<'_>) -> Result<(String, Bytes)> {
        let cipher = match self.cached(sealed.fingerprint) {
            Some(c) => c,
            None => {
                let ring = self.stream.keyring.as_deref().ok_or_else(|| {
                    StreamError::KeyUnavailable(format!(
                        "{} holds encrypted records and this store has no keyring configured",
                        self.shard
                    ))
                })?;
                let key = ring.by_fingerprint(sealed.fingerprint)?;
                self.cipher(&key)
            }
        };
        let mut buf = Vec::with_capacity(sealed.ciphertext.len() + sealed.tag.len());
        buf.extend_from_slice(sealed.ciphertext);
        buf.extend_from_slice(sealed.tag);
        let plain_len = cipher
            .open_in_place(
                nonce(sealed.epoch, counter),
                Aad::from(sealed.aad),
                &mut buf,
            )
            .map(|p| p.len())
            .map_err(|_| {
                StreamError::KeyUnavailable(format!(
                    "record {counter} of {} does not authenticate under key {}: it was altered",
                    self.shard,
                    hex(&sealed.fingerprint)
                ))
            })?;
        buf.truncate(plain_len);
        let key_len = sealed.key_len;
        let key = std::str::from_utf8(&buf[..key_len])
            .map_err(|_| {
                StreamError::KeyUnavailable(format!(
                    "record {counter} of {} has a partition key that is not UTF-8",
                    self.shard
                ))
            })?
            .to_owned();
        Ok((key, Bytes::from(buf).slice(key_len..)))
    }

    fn cached(&self, fingerprint: [u8; 8]) -> Option<Arc<LessSafeKey>> {
        self.ciphers
            .lock()
            .iter()
            .find(|(f, _)| *f == fingerprint)
            .map(|(_, c)| c.clone())
    }

    fn cipher(&self, key: &MasterKey) -> Arc<LessSafeKey> {
        if let Some(c) = self.cached(key.fingerprint()) {
            return c;
        }
        let c = Arc::new(key.derive(&self.context));
        self.ciphers.lock().push((key.fingerprint(), c.clone()));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment;

    fn sealed_entry(seal: &ShardSeal) -> Vec<u8> {
        let sealer = seal.for_writing().unwrap().expect("sealing");
        let mut buf = Vec::new();
        segment::encode(&mut buf, 9, 1_000, "pk", b"the payload", Some(&sealer));
        buf
    }

    #[test]
    fn a_sealed_entry_opens_and_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let seal = ShardSeal::sealed_for_test(&dir.path().join("k.toml"));
        let buf = sealed_entry(&seal);
        assert!(!buf.windows(7).any(|w| w == b"payload"));
        let e = segment::decode(&buf).unwrap();
        assert_eq!((e.counter, e.arrival_ms, e.data_len()), (9, 1_000, 11));
        let (key, data) = seal.open(e.counter, e.sealed.as_ref().unwrap()).unwrap();
        assert_eq!((key.as_str(), &data[..]), ("pk", &b"the payload"[..]));
    }

    #[test]
    fn an_altered_header_or_another_key_is_an_error_never_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let seal = ShardSeal::sealed_for_test(&dir.path().join("k.toml"));
        let mut buf = sealed_entry(&seal);
        // Move the record in time and fix the CRC: only the tag can tell.
        buf[16] ^= 1;
        let crc = crc32c::crc32c(&buf[8..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let e = segment::decode(&buf).unwrap();
        let err = seal
            .open(e.counter, e.sealed.as_ref().unwrap())
            .unwrap_err();
        assert!(
            matches!(err, StreamError::KeyUnavailable(ref m) if m.contains("altered")),
            "{err}"
        );

        let buf = sealed_entry(&seal);
        let e = segment::decode(&buf).unwrap();
        let other = ShardSeal::sealed_for_test(&dir.path().join("other.toml"));
        let err = other
            .open(e.counter, e.sealed.as_ref().unwrap())
            .unwrap_err();
        assert!(
            matches!(err, StreamError::KeyNotFound(ref m) if m.contains("fingerprint")),
            "{err}"
        );
        // The same key in a shard of another stream (another derived key) does not open it.
        let ring = Arc::new(Keyring::at(dir.path().join("k.toml")));
        let stream = Arc::new(StreamSeal::new(Some(ring), None));
        let elsewhere = ShardSeal::new(stream, "t", 0, 1);
        assert!(
            elsewhere
                .open(e.counter, e.sealed.as_ref().unwrap())
                .is_err()
        );
    }
}
