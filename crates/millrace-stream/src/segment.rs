//! One segment file of a shard's log: a magic header, then entries framed as
//!
//! ```text
//! u32 len | u32 crc32c | u64 counter | i64 arrival_ms | u16 key_len | key | data
//!           \____________________ len bytes, covered by the CRC ____________/
//! ```
//!
//! (little-endian). In an entry sealed under a key (encryption at rest, `seal`), the top bit of
//! the key length is set and `key | data` is replaced by `fingerprint | epoch | ciphertext | tag`;
//! the frame and header are the same, so recovery checks and positions sealed entries without
//! a key. A reader trusts an entry only when its length fits the file and its CRC
//! matches, so a write torn by a crash is detected and cut off on recovery. The length has no
//! upper bound other than the file's end: whatever its size, an entry written whole and
//! matching its CRC is a record, never a torn tail (the store refuses records over the API's
//! limits before they are written, see `limits::check_record`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{IoContext, Result};
use crate::seal::{self, Sealer};

pub(crate) const MAGIC: &[u8; 8] = b"MRLOG\x001\n";
pub(crate) const HEADER_LEN: u64 = MAGIC.len() as u64;
const FIXED: usize = 8 + 8 + 2; // counter, arrival, key length
const FRAME: usize = 4 + 4; // len, crc

/// Largest record (data plus key) the log takes: Kinesis's ceiling after UpdateMaxRecordSize,
/// 10 MiB.
pub const MAX_RECORD_BYTES: usize = 10 * 1024 * 1024;

/// The key-length bit that marks a sealed entry.
const SEALED_BIT: u16 = 0x8000;

/// A decoded entry, borrowed from the buffer it was read from. A sealed entry has an empty
/// `key` and `data` and its parts in `sealed`: only `seal::ShardSeal::open` reads those.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub counter: u64,
    pub arrival_ms: i64,
    pub key: &'a str,
    pub data: &'a [u8],
    pub sealed: Option<Sealed<'a>>,
    /// Bytes this entry occupies in the file.
    pub size: usize,
}

impl Entry<'_> {
    /// Bytes of record data, sealed or not (what read limits count).
    pub fn data_len(&self) -> usize {
        match &self.sealed {
            Some(s) => s.ciphertext.len() - s.key_len,
            None => self.data.len(),
        }
    }
}

/// The parts of a sealed entry.
#[derive(Debug)]
pub(crate) struct Sealed<'a> {
    pub fingerprint: [u8; 8],
    pub epoch: u32,
    /// Length of the partition key at the front of the plaintext.
    pub key_len: usize,
    /// The header the tag covers: counter, arrival, key length, fingerprint and epoch.
    pub aad: &'a [u8],
    pub ciphertext: &'a [u8],
    pub tag: &'a [u8],
}

pub(crate) fn encoded_len(key: &str, data: &[u8], sealed: bool) -> usize {
    FRAME + FIXED + key.len() + data.len() + if sealed { seal::OVERHEAD } else { 0 }
}

/// Appends one entry to `buf`, sealed when `sealer` is given.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    counter: u64,
    arrival_ms: i64,
    key: &str,
    data: &[u8],
    sealer: Option<&Sealer>,
) {
    let len = encoded_len(key, data, sealer.is_some()) - FRAME;
    buf.reserve(FRAME + len);
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    let crc_at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let body_at = buf.len();
    buf.extend_from_slice(&counter.to_le_bytes());
    buf.extend_from_slice(&arrival_ms.to_le_bytes());
    match sealer {
        None => {
            buf.extend_from_slice(&(key.len() as u16).to_le_bytes());
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(data);
        }
        Some(sealer) => {
            buf.extend_from_slice(&(key.len() as u16 | SEALED_BIT).to_le_bytes());
            buf.extend_from_slice(&sealer.fingerprint());
            buf.extend_from_slice(&sealer.epoch().to_le_bytes());
            let plain_at = buf.len();
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(data);
            let (head, plain) = buf.split_at_mut(plain_at);
            let tag = sealer.seal(counter, &head[body_at..], plain);
            buf.extend_from_slice(&tag);
        }
    }
    let crc = crc32c::crc32c(&buf[body_at..]);
    buf[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Why decoding stopped before the end of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The buffer ends inside an entry: read more, or (at end of file) a torn tail.
    Short { need: usize },
    /// The bytes are not a valid entry (bad length, CRC or key).
    Corrupt(&'static str),
}

/// Decodes the entry at the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> std::result::Result<Entry<'_>, Stop> {
    if buf.len() < FRAME {
        return Err(Stop::Short { need: FRAME });
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
    // No upper bound: a length past the end of the data is a torn tail (`Short`), and garbage
    // that happens to fit is caught by the CRC.
    if len < FIXED {
        return Err(Stop::Corrupt("entry length out of range"));
    }
    if buf.len() < FRAME + len {
        return Err(Stop::Short { need: FRAME + len });
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    let body = &buf[FRAME..FRAME + len];
    if crc32c::crc32c(body) != crc {
        return Err(Stop::Corrupt("CRC mismatch"));
    }
    let counter = u64::from_le_bytes(body[0..8].try_into().unwrap());
    let arrival_ms = i64::from_le_bytes(body[8..16].try_into().unwrap());
    let key_field = u16::from_le_bytes(body[16..18].try_into().unwrap());
    if key_field & SEALED_BIT != 0 {
        let key_len = (key_field & !SEALED_BIT) as usize;
        if FIXED + seal::OVERHEAD + key_len > len {
            return Err(Stop::Corrupt("sealed entry too short"));
        }
        let ct_at = FIXED + 12;
        return Ok(Entry {
            counter,
            arrival_ms,
            key: "",
            data: &[],
            sealed: Some(Sealed {
                fingerprint: body[FIXED..FIXED + 8].try_into().unwrap(),
                epoch: u32::from_le_bytes(body[FIXED + 8..ct_at].try_into().unwrap()),
                key_len,
                aad: &body[..ct_at],
                ciphertext: &body[ct_at..len - 16],
                tag: &body[len - 16..],
            }),
            size: FRAME + len,
        });
    }
    let key_len = key_field as usize;
    if FIXED + key_len > len {
        return Err(Stop::Corrupt("key length out of range"));
    }
    let key = std::str::from_utf8(&body[FIXED..FIXED + key_len])
        .map_err(|_| Stop::Corrupt("key is not UTF-8"))?;
    Ok(Entry {
        counter,
        arrival_ms,
        key,
        data: &body[FIXED + key_len..],
        sealed: None,
        size: FRAME + len,
    })
}

/// A sparse index point: the entry with `counter` starts at byte `offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexPoint {
    pub counter: u64,
    pub offset: u64,
    pub arrival_ms: i64,
}

/// Distance between index points; a lookup scans at most this many bytes.
pub(crate) const INDEX_EVERY: u64 = 64 * 1024;

/// What recovery learned about one segment file.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub len: u64,
    pub next_counter: Option<u64>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub index: Vec<IndexPoint>,
    pub truncated_bytes: u64,
}

pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

/// Creates an empty segment (header only), fsyncs it and its directory. Keeps no descriptor:
/// the store's open files (`files`) open it when it is written or read.
pub(crate) fn create(path: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .at(path)?;
    let made = (|| {
        file.write_all_at(MAGIC, 0).at(path)?;
        file.sync_all().at(path)?;
        drop(file);
        match path.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    })();
    if made.is_err() {
        // Half made: gone, so that the next try can create it again.
        let _ = std::fs::remove_file(path);
    }
    made
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    millrace_common::durable::sync_dir(dir).at(dir)
}

/// Reads a whole segment, verifies every entry, and truncates the file after the last good
/// one. Counters must grow; `min_counter` is the first counter this segment may hold.
pub(crate) fn recover(path: &Path, min_counter: u64) -> Result<Scanned> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let file_len = file.seek(SeekFrom::End(0)).at(path)?;
    file.seek(SeekFrom::Start(0)).at(path)?;
    let mut bytes = Vec::with_capacity(file_len as usize);
    file.read_to_end(&mut bytes).at(path)?;

    let mut scanned = Scanned {
        len: HEADER_LEN,
        next_counter: None,
        first_ms: None,
        last_ms: None,
        index: Vec::new(),
        truncated_bytes: 0,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        // A segment torn before its header was durable holds nothing acknowledged.
        file.set_len(0).at(path)?;
        file.write_all_at(MAGIC, 0).at(path)?;
        file.sync_all().at(path)?;
        scanned.truncated_bytes = file_len;
        return Ok(scanned);
    }
    let mut pos = MAGIC.len();
    let mut expect = min_counter;
    let mut last_indexed: Option<u64> = None;
    while pos < bytes.len() {
        let entry = match decode(&bytes[pos..]) {
            Ok(e) if e.counter >= expect => e,
            Ok(_) => break, // counters went backwards: not ours, treat as garbage
            Err(_) => break,
        };
        let offset = pos as u64;
        if last_indexed.is_none_or(|at| offset - at >= INDEX_EVERY) {
            scanned.index.push(IndexPoint {
                counter: entry.counter,
                offset,
                arrival_ms: entry.arrival_ms,
            });
            last_indexed = Some(offset);
        }
        scanned.first_ms.get_or_insert(entry.arrival_ms);
        scanned.last_ms = Some(entry.arrival_ms);
        expect = entry.counter + 1;
        scanned.next_counter = Some(expect);
        pos += entry.size;
    }
    scanned.len = pos as u64;
    if (pos as u64) < file_len {
        scanned.truncated_bytes = file_len - pos as u64;
        file.set_len(pos as u64).at(path)?;
        file.sync_all().at(path)?;
    }
    Ok(scanned)
}

/// Reads `len` bytes at `offset`, or fewer at end of file.
pub(crate) fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Bytes> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = file
            .read_at(&mut buf[filled..], offset + filled as u64)
            .at(path)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 1234, "key-é", b"hello", None);
        let e = decode(&buf).unwrap();
        assert_eq!(
            (e.counter, e.arrival_ms, e.key, e.data),
            (7, 1234, "key-é", &b"hello"[..])
        );
        assert_eq!(e.size, buf.len());
        assert_eq!(e.size, encoded_len("key-é", b"hello", false));
        buf[20] ^= 1;
        assert_eq!(decode(&buf).unwrap_err(), Stop::Corrupt("CRC mismatch"));
    }

    proptest! {
        /// Cutting a segment at any byte keeps exactly the entries that were whole.
        #[test]
        fn recovery_keeps_the_whole_prefix(
            records in proptest::collection::vec((".{1,8}", proptest::collection::vec(any::<u8>(), 0..300)), 1..20),
            cut_seed in any::<u64>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("00000000000000000000.log");
            let mut bytes = MAGIC.to_vec();
            let mut ends = Vec::new();
            for (i, (k, d)) in records.iter().enumerate() {
                encode(&mut bytes, i as u64, 1000 + i as i64, k, d, None);
                ends.push(bytes.len());
            }
            let cut = (cut_seed % (bytes.len() as u64 + 1)) as usize;
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let scanned = recover(&path, 0).unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            prop_assert_eq!(scanned.next_counter, (whole > 0).then_some(whole as u64));
            let on_disk = std::fs::read(&path).unwrap();
            let expect_len = if whole == 0 { MAGIC.len() } else { ends[whole - 1] };
            prop_assert_eq!(on_disk.len(), expect_len);
            prop_assert_eq!(&on_disk[..], &bytes[..expect_len]);
        }

        /// Flipping any byte after the header never yields a record that was not written.
        #[test]
        fn corruption_is_detected(flip in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 1..200)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("00000000000000000000.log");
            let mut bytes = MAGIC.to_vec();
            encode(&mut bytes, 0, 1, "k", &data, None);
            encode(&mut bytes, 1, 2, "k", &data, None);
            let at = MAGIC.len() + (flip as usize % (bytes.len() - MAGIC.len()));
            bytes[at] ^= 0x5a;
            std::fs::write(&path, &bytes).unwrap();
            let scanned = recover(&path, 0).unwrap();
            // The first entry survives only if the flip hit the second one.
            let first_end = MAGIC.len() + encoded_len("k", &data, false);
            let expect = if at < first_end { None } else { Some(1) };
            prop_assert_eq!(scanned.next_counter, expect);
        }
    }
}
