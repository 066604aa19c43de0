//! Receipt handles: which record a receive handed out, on which side (live or dead-letter)
//! and in which generation, signed with HMAC-SHA256 under the server's key and bound to the
//! queue's id, so a handle of another queue, an edited one or a guessed one is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::state::Key;

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 1 + 4 + 8 + 4 + 8;
const TAG_LEN: usize = 16;

/// Which receive a handle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Live,
    DeadLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub side: Side,
    pub key: Key,
    pub generation: u32,
    pub issued_ms: i64,
}

/// Signs and checks receipt handles.
#[derive(Clone)]
pub struct HandleCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for HandleCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleCodec")
    }
}

impl HandleCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn tag(&self, queue_id: &str, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"millrace-queue-receipt\0");
        mac.update(queue_id.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        let full = mac.finalize().into_bytes();
        full[..TAG_LEN].try_into().expect("16 bytes")
    }

    pub fn encode(&self, queue_id: &str, r: &Receipt) -> String {
        let mut b = Vec::with_capacity(BODY_LEN + TAG_LEN);
        b.push(VERSION);
        b.push(matches!(r.side, Side::DeadLetter) as u8);
        b.extend_from_slice(&r.key.0.to_be_bytes());
        b.extend_from_slice(&r.key.1.to_be_bytes());
        b.extend_from_slice(&r.generation.to_be_bytes());
        b.extend_from_slice(&r.issued_ms.to_be_bytes());
        let tag = self.tag(queue_id, &b);
        b.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(b)
    }

    /// The receipt in `handle` if this server issued it for `queue_id`.
    pub fn decode(&self, queue_id: &str, handle: &str) -> Option<Receipt> {
        let b = URL_SAFE_NO_PAD.decode(handle).ok()?;
        if b.len() != BODY_LEN + TAG_LEN || b[0] != VERSION {
            return None;
        }
        let (body, tag) = b.split_at(BODY_LEN);
        let expected = self.tag(queue_id, body);
        // Constant time is not needed for a 128-bit MAC checked once per handle, but cheap.
        if expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        {
            return None;
        }
        let side = match body[1] {
            0 => Side::Live,
            1 => Side::DeadLetter,
            _ => return None,
        };
        Some(Receipt {
            side,
            key: (
                u32::from_be_bytes(body[2..6].try_into().ok()?),
                u64::from_be_bytes(body[6..14].try_into().ok()?),
            ),
            generation: u32::from_be_bytes(body[14..18].try_into().ok()?),
            issued_ms: i64::from_be_bytes(body[18..26].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_bind_to_their_queue() {
        let c = HandleCodec::new([9; 32]);
        let r = Receipt {
            side: Side::DeadLetter,
            key: (3, 123_456_789),
            generation: 7,
            issued_ms: 1_700_000_000_000,
        };
        let h = c.encode("q1", &r);
        assert!(h.len() <= 1024);
        assert_eq!(c.decode("q1", &h), Some(r));
        assert_eq!(c.decode("q2", &h), None);
        assert_eq!(HandleCodec::new([8; 32]).decode("q1", &h), None);
        let mut edited = h.clone().into_bytes();
        edited[5] = if edited[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(c.decode("q1", std::str::from_utf8(&edited).unwrap()), None);
        assert_eq!(c.decode("q1", "not a handle"), None);
    }
}
