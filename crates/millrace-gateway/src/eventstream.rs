//! SubscribeToShard's reply as Kinesis sends it, framed by `millrace_http::eventstream` (AWS
//! event stream framing, shared with the endpoint's SageMaker streams): `:event-type`
//! `initial-response` first, then `SubscribeToShardEvent`, or an `exception` whose
//! `:exception-type` is the error's type; `:content-type` is the protocol the request spoke,
//! and the payload is encoded in it.

use bytes::Bytes;
use millrace_http::eventstream as framing;

use crate::error::ApiError;
use crate::protocol::{Out, Protocol};

/// The reply's `Content-Type`.
pub use millrace_http::eventstream::CONTENT_TYPE;

/// An event of type `event_type` with `payload` encoded in `protocol`.
pub fn event(protocol: Protocol, event_type: &'static str, payload: &Out) -> Bytes {
    framing::event(
        event_type,
        protocol.content_type(),
        protocol.encode(payload),
    )
}

/// The first message of every stream: `initial-response`, an empty structure.
pub fn initial_response(protocol: Protocol) -> Bytes {
    event(protocol, "initial-response", &Out::map([]))
}

/// An error in the stream (it ends the stream): the error's type in `:exception-type` and
/// `{"message": …}` as the payload.
pub fn exception(protocol: Protocol, e: &ApiError) -> Bytes {
    framing::exception(
        e.code.as_str(),
        protocol.content_type(),
        protocol.encode(&Out::map([("message", Out::str(&e.message))])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;

    #[test]
    fn frames_read_back_with_the_sdk_decoder() {
        let bytes = event(
            Protocol::Json,
            "SubscribeToShardEvent",
            &Out::map([("MillisBehindLatest", Out::Int(0))]),
        );
        let m = read_message_from(&bytes[..]).unwrap();
        let h = aws_smithy_eventstream::smithy::parse_response_headers(&m).unwrap();
        assert_eq!(h.message_type.as_str(), "event");
        assert_eq!(h.smithy_type.as_str(), "SubscribeToShardEvent");
        assert_eq!(&m.payload()[..], br#"{"MillisBehindLatest":0}"#);
    }
}
