//! Shard iterators: opaque tokens that carry a read position, signed with HMAC-SHA256 so a
//! client cannot forge or alter one, and stamped with their creation time so they expire
//! after five minutes like Kinesis's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{ApiError, ErrorCode};

/// How long an iterator stays valid.
pub const ITERATOR_TTL_MS: i64 = 5 * 60 * 1000;
const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const FIXED: usize = 1 + 8 + 8 + 4 + 8;

/// A decoded iterator position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub stream: String,
    pub stream_created_ms: i64,
    pub shard: u32,
    pub counter: u64,
    pub issued_ms: i64,
}

/// Signs and verifies iterator tokens with a server-held key.
#[derive(Clone)]
pub struct IteratorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for IteratorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorCodec(..)")
    }
}

impl IteratorCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(payload);
        let full = m.finalize().into_bytes();
        full[..MAC_LEN].try_into().unwrap()
    }

    pub fn encode(&self, p: &Position) -> String {
        let mut buf = Vec::with_capacity(FIXED + p.stream.len() + MAC_LEN);
        buf.push(VERSION);
        buf.extend_from_slice(&p.issued_ms.to_be_bytes());
        buf.extend_from_slice(&p.stream_created_ms.to_be_bytes());
        buf.extend_from_slice(&p.shard.to_be_bytes());
        buf.extend_from_slice(&p.counter.to_be_bytes());
        buf.extend_from_slice(p.stream.as_bytes());
        let mac = self.mac(&buf);
        buf.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Verifies the signature and expiry, returning the position.
    pub fn decode(&self, token: &str, now_ms: i64) -> Result<Position, ApiError> {
        let invalid = || ApiError::invalid(format!("Invalid ShardIterator: {}", shorten(token)));
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() < FIXED + MAC_LEN || bytes[0] != VERSION {
            return Err(invalid());
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        // Constant-time comparison through the hmac crate.
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(payload);
        m.verify_truncated_left(mac).map_err(|_| invalid())?;
        let be8 = |at: usize| <[u8; 8]>::try_from(&payload[at..at + 8]).unwrap();
        let p = Position {
            issued_ms: i64::from_be_bytes(be8(1)),
            stream_created_ms: i64::from_be_bytes(be8(9)),
            shard: u32::from_be_bytes(payload[17..21].try_into().unwrap()),
            counter: u64::from_be_bytes(be8(21)),
            stream: String::from_utf8(payload[FIXED..].to_vec()).map_err(|_| invalid())?,
        };
        if now_ms - p.issued_ms > ITERATOR_TTL_MS {
            return Err(ApiError::new(
                ErrorCode::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it \
                     is {} which is further in the future than the tolerated delay of {} \
                     milliseconds.",
                    p.issued_ms, now_ms, ITERATOR_TTL_MS
                ),
            ));
        }
        Ok(p)
    }
}

fn shorten(s: &str) -> String {
    if s.len() > 64 {
        format!("{}...", &s[..s.floor_char_boundary(64)])
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Position {
        Position {
            stream: "s".into(),
            stream_created_ms: 5,
            shard: 2,
            counter: 99,
            issued_ms: 1_000,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let c = IteratorCodec::new([7; 32]);
        let t = c.encode(&pos());
        assert_eq!(c.decode(&t, 2_000).unwrap(), pos());
        let e = c.decode(&t, 1_000 + ITERATOR_TTL_MS + 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::ExpiredIterator);
    }

    #[test]
    fn forged_or_foreign_tokens_are_rejected() {
        let c = IteratorCodec::new([7; 32]);
        let t = c.encode(&pos());
        let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        bytes[25] ^= 1; // move the counter
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            c.decode(&forged, 2_000).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let other = IteratorCodec::new([8; 32]);
        assert_eq!(
            other.decode(&t, 2_000).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            c.decode("not base64 !", 2_000).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
