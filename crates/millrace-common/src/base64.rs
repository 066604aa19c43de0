//! Standard base64 (RFC 4648, padded) for record data on the wire, where every PutRecords,
//! PutRecordBatch and GetRecords call spends most of its bytes: SIMD (AVX2, SSE4.1 or NEON,
//! picked at run time) through `base64-simd`, the decoder the AWS SDK's smithy types use.
//!
//! The scalar `base64` crate decoded 600-byte records at ~1.25 GB/s and took 15% of the
//! server's CPU in the 4-client PutRecords benchmark (bench/README.md, "Identities"). Decoding
//! is as strict as that crate's `STANDARD`: padding required, no whitespace, no stray bits in
//! the last character.

use base64_simd::STANDARD;

/// Why a string is not standard base64.
#[derive(Debug, thiserror::Error)]
#[error("invalid base64 (standard alphabet, padded)")]
pub struct Base64Error;

/// The bytes `text` encodes.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    STANDARD
        .decode_to_vec(text.as_bytes())
        .map_err(|_| Base64Error)
}

/// `bytes` in base64, appended to `out`.
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + STANDARD.encoded_length(bytes.len()), 0);
    let written = STANDARD
        .encode(bytes, base64_simd::Out::from_slice(&mut out[start..]))
        .len();
    out.truncate(start + written);
}

/// `bytes` in base64.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode_to_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_and_byte() {
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 97 + len) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(text.len(), len.div_ceil(3) * 4);
            assert_eq!(decode(&text).unwrap(), bytes, "length {len}");
            let mut out = b"prefix".to_vec();
            encode_into(&bytes, &mut out);
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(&out[6..], text.as_bytes());
        }
    }

    #[test]
    fn refuses_what_standard_base64_refuses() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        for bad in [
            "aGVsbG8",   // padding missing
            "aGVsbG8==", // too much padding
            "aGVs bG8=", // whitespace
            "aGVsbG8-",  // URL-safe alphabet
            "aGVsbG9=",  // stray bits in the last character
            "QR==",      // stray bits with two padding characters
            "not base64 !",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} decoded");
        }
        assert_eq!(decode("").unwrap(), b"");
    }
}
