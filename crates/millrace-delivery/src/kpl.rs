//! KPL de-aggregation: the Kinesis Producer Library packs several user records into one
//! Kinesis record (the "aggregated record format"): the magic bytes `F3 89 9A C2`, a protobuf
//! `AggregatedRecord`, then the 16-byte MD5 of the protobuf bytes.
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;
//! }
//! message Tag { required string key = 1; optional string value = 2; }
//! ```
//!
//! As the format asks of consumers, a record that has the magic but not a matching digest or a
//! well-formed message is not an aggregated record: it is delivered as it is. So is one with no
//! user records, so that nothing put vanishes. The decoder below reads protobuf's wire format
//! directly (varints and length-delimited fields); unknown fields are skipped, as protobuf does.

use std::ops::Range;

use bytes::Bytes;
use md5::{Digest, Md5};

/// The first four bytes of every KPL aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// The MD5 digest at the end.
const DIGEST_LEN: usize = 16;

/// One user record of an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    /// A slice of the aggregated record's bytes (no copy).
    pub data: Bytes,
}

/// Why a record is not a KPL aggregated record (it is then delivered as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAggregated {
    #[error("no KPL magic")]
    NoMagic,
    #[error("the MD5 digest does not match the protobuf message")]
    Digest,
    #[error("not an AggregatedRecord message: {0}")]
    Protobuf(&'static str),
    #[error("an AggregatedRecord with no records")]
    Empty,
}

/// The user records of `data` when it is a KPL aggregated record.
pub fn deaggregate(data: &Bytes) -> Result<Vec<UserRecord>, NotAggregated> {
    if data.len() < MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
        return Err(NotAggregated::NoMagic);
    }
    let body = MAGIC.len()..data.len() - DIGEST_LEN;
    let digest: [u8; DIGEST_LEN] = Md5::digest(&data[body.clone()]).into();
    if data[body.end..] != digest {
        return Err(NotAggregated::Digest);
    }
    let message = parse_aggregated(&data[body.clone()]).map_err(NotAggregated::Protobuf)?;
    if message.records.is_empty() {
        return Err(NotAggregated::Empty);
    }
    message
        .records
        .into_iter()
        .map(|r| {
            let key = message.partition_keys.get(r.partition_key_index).ok_or(
                NotAggregated::Protobuf("partition_key_index out of the table"),
            )?;
            if r.explicit_hash_key_index
                .is_some_and(|i| i >= message.explicit_hash_keys)
            {
                return Err(NotAggregated::Protobuf(
                    "explicit_hash_key_index out of the table",
                ));
            }
            Ok(UserRecord {
                partition_key: key.clone(),
                data: data.slice(body.start + r.data.start..body.start + r.data.end),
            })
        })
        .collect()
}

/// An `AggregatedRecord` read from its bytes; data ranges are offsets into them.
struct Aggregated {
    partition_keys: Vec<String>,
    /// Only the table's length matters: hash keys place records on shards, done by now.
    explicit_hash_keys: usize,
    records: Vec<RecordRef>,
}

struct RecordRef {
    partition_key_index: usize,
    explicit_hash_key_index: Option<usize>,
    data: Range<usize>,
}

type Parsed<T> = Result<T, &'static str>;

fn parse_aggregated(buf: &[u8]) -> Parsed<Aggregated> {
    let mut out = Aggregated {
        partition_keys: Vec::new(),
        explicit_hash_keys: 0,
        records: Vec::new(),
    };
    let mut r = Reader { buf, pos: 0 };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Bytes(range)) => out
                .partition_keys
                .push(String::from_utf8_lossy(&buf[range]).into_owned()),
            (2, Value::Bytes(_)) => out.explicit_hash_keys += 1,
            (3, Value::Bytes(range)) => {
                let mut record = parse_record(&buf[range.clone()])?;
                record.data = range.start + record.data.start..range.start + record.data.end;
                out.records.push(record);
            }
            (1..=3, _) => return Err("a field of AggregatedRecord with the wrong wire type"),
            _ => {} // unknown fields are skipped
        }
    }
    Ok(out)
}

fn parse_record(buf: &[u8]) -> Parsed<RecordRef> {
    let (mut key, mut hash, mut data) = (None, None, None);
    let mut r = Reader { buf, pos: 0 };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Varint(i)) => key = Some(index(i)?),
            (2, Value::Varint(i)) => hash = Some(index(i)?),
            (3, Value::Bytes(range)) => data = Some(range),
            (4, Value::Bytes(range)) => check_tag(&buf[range])?,
            (1..=4, _) => return Err("a field of Record with the wrong wire type"),
            _ => {}
        }
    }
    Ok(RecordRef {
        partition_key_index: key.ok_or("a Record without partition_key_index")?,
        explicit_hash_key_index: hash,
        data: data.ok_or("a Record without data")?,
    })
}

/// Tags are not delivered, but a Tag must still be a well-formed message with its key.
fn check_tag(buf: &[u8]) -> Parsed<()> {
    let mut has_key = false;
    let mut r = Reader { buf, pos: 0 };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Bytes(_)) => has_key = true,
            (2, Value::Bytes(_)) => {}
            (1 | 2, _) => return Err("a field of Tag with the wrong wire type"),
            _ => {}
        }
    }
    has_key.then_some(()).ok_or("a Tag without a key")
}

fn index(i: u64) -> Parsed<usize> {
    usize::try_from(i).map_err(|_| "an index too large")
}

/// A field's value, by wire type (fixed-width values are skipped, never used here).
enum Value {
    Varint(u64),
    Bytes(Range<usize>),
    Fixed,
}

/// Protobuf's wire format over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// The next field (number and value), or `None` at the message's end.
    fn field(&mut self) -> Parsed<Option<(u64, Value)>> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err("a field number out of range");
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8).map(|_| Value::Fixed)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "a length too large")?;
                let start = self.pos;
                self.skip(len)?;
                Value::Bytes(start..self.pos)
            }
            5 => self.skip(4).map(|_| Value::Fixed)?,
            _ => return Err("a group or an unknown wire type"),
        };
        Ok(Some((number, value)))
    }

    fn varint(&mut self) -> Parsed<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("a varint cut short")?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err("a varint over 64 bits");
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint over 10 bytes")
    }

    fn skip(&mut self, len: usize) -> Parsed<()> {
        if self.buf.len() - self.pos < len {
            return Err("a field longer than its message");
        }
        self.pos += len;
        Ok(())
    }
}

/// Builds aggregated records as the KPL does, for tests.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn bytes_field(out: &mut Vec<u8>, field: u64, value: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }

    pub fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
        varint(out, field << 3);
        varint(out, value);
    }

    /// The protobuf `AggregatedRecord` of `(partition key, data)` pairs, keys in a table.
    pub fn message(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut keys: Vec<&str> = Vec::new();
        let mut body = Vec::new();
        for (key, data) in records {
            let i = keys.iter().position(|k| k == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            });
            let mut record = Vec::new();
            varint_field(&mut record, 1, i as u64);
            bytes_field(&mut record, 3, data);
            bytes_field(&mut body, 3, &record);
        }
        let mut out = Vec::new();
        for k in keys {
            bytes_field(&mut out, 1, k.as_bytes());
        }
        out.extend(body);
        out
    }

    /// Magic, `message`, MD5 of `message`.
    pub fn frame(message: &[u8]) -> Bytes {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(message);
        out.extend_from_slice(&Md5::digest(message));
        Bytes::from(out)
    }

    pub fn aggregate(records: &[(&str, &[u8])]) -> Bytes {
        frame(&message(records))
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn user(key: &str, data: &str) -> UserRecord {
        UserRecord {
            partition_key: key.into(),
            data: Bytes::from(data.to_owned()),
        }
    }

    #[test]
    fn an_aggregated_record_gives_its_user_records_in_order() {
        let big = "x".repeat(300); // a length over one varint byte
        let agg = aggregate(&[
            ("a", b"{\"n\":1}"),
            ("b", b"{\"n\":2}"),
            ("a", big.as_bytes()),
            ("c", b""),
        ]);
        assert_eq!(
            deaggregate(&agg).unwrap(),
            [
                user("a", "{\"n\":1}"),
                user("b", "{\"n\":2}"),
                user("a", &big),
                user("c", ""),
            ]
        );
    }

    #[test]
    fn hash_keys_tags_and_unknown_fields_are_read_past() {
        let mut record = Vec::new();
        varint_field(&mut record, 1, 0);
        varint_field(&mut record, 2, 0);
        bytes_field(&mut record, 3, b"payload");
        let mut tag = Vec::new();
        bytes_field(&mut tag, 1, b"k");
        bytes_field(&mut tag, 2, b"v");
        bytes_field(&mut record, 4, &tag);
        varint_field(&mut record, 9, 7); // unknown
        let mut message = Vec::new();
        bytes_field(&mut message, 1, b"pk");
        bytes_field(&mut message, 2, b"340282366920938463463374607431768211455");
        bytes_field(&mut message, 3, &record);
        varint(&mut message, 15 << 3 | 5); // unknown fixed32
        message.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            deaggregate(&frame(&message)).unwrap(),
            [user("pk", "payload")]
        );
    }

    #[test]
    fn what_is_not_a_well_formed_aggregate_is_a_plain_record() {
        let good = aggregate(&[("a", b"one"), ("a", b"two")]);
        let mut bad_digest = good.to_vec();
        *bad_digest.last_mut().unwrap() ^= 1;
        assert_eq!(
            deaggregate(&Bytes::from(bad_digest)),
            Err(NotAggregated::Digest)
        );
        let mut flipped = good.to_vec();
        flipped[10] ^= 0x40; // inside the message: the digest no longer matches
        assert_eq!(
            deaggregate(&Bytes::from(flipped)),
            Err(NotAggregated::Digest)
        );
        assert_eq!(
            deaggregate(&Bytes::from_static(b"{\"plain\":true}")),
            Err(NotAggregated::NoMagic)
        );
        assert_eq!(
            deaggregate(&Bytes::from(MAGIC.to_vec())),
            Err(NotAggregated::NoMagic)
        );
        assert_eq!(deaggregate(&frame(&[])), Err(NotAggregated::Empty));
        // Digests that match messages that are not AggregatedRecords.
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0x1A, 0x05, 0x08], "longer than its message"),
            (vec![0x0B], "group"),
            (vec![0x08, 0x01], "wrong wire type"),
            (vec![0xFF; 11], "varint"),
            (vec![0x00, 0x00], "field number"),
            (
                {
                    let mut m = Vec::new();
                    bytes_field(&mut m, 3, &[0x1A, 0x01, b'x']); // no partition_key_index
                    m
                },
                "without partition_key_index",
            ),
            (message(&[("a", b"x")])[3..].to_vec(), "out of the table"),
        ];
        for (message, says) in cases {
            match deaggregate(&frame(&message)) {
                Err(NotAggregated::Protobuf(why)) => assert!(why.contains(says), "{why}"),
                other => panic!("{message:?}: {other:?}"),
            }
        }
    }
}
