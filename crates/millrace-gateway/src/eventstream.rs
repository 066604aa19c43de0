//! AWS event stream framing (`application/vnd.amazon.eventstream`) for SubscribeToShard's
//! reply: each message is a prelude, headers, a payload and CRCs, written by
//! `aws-smithy-eventstream` (what aws-sdk-kinesis reads it with). Headers as Kinesis sends
//! them: `:message-type` `event` with `:event-type` (`initial-response` first, then
//! `SubscribeToShardEvent`), or `exception` with `:exception-type`; `:content-type` is the
//! protocol the request spoke, and the payload is encoded in it.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;

use crate::error::ApiError;
use crate::protocol::{Out, Protocol};

/// The reply's `Content-Type`.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

fn frame(headers: Vec<Header>, payload: Vec<u8>) -> Bytes {
    let message = Message::new_from_parts(headers, payload);
    let mut buf = Vec::with_capacity(message.payload().len() + 128);
    write_message_to(&message, &mut buf).expect("an event is within the frame limits");
    Bytes::from(buf)
}

fn string(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

/// An event of type `event_type` with `payload` encoded in `protocol`.
pub fn event(protocol: Protocol, event_type: &'static str, payload: &Out) -> Bytes {
    frame(
        vec![
            string(":message-type", "event"),
            string(":event-type", event_type),
            string(":content-type", protocol.content_type()),
        ],
        protocol.encode(payload),
    )
}

/// The first message of every stream: `initial-response`, an empty structure.
pub fn initial_response(protocol: Protocol) -> Bytes {
    event(protocol, "initial-response", &Out::map([]))
}

/// An error in the stream (it ends the stream): `:message-type` `exception`, the error's type
/// in `:exception-type` and `{"message": …}` as the payload.
pub fn exception(protocol: Protocol, e: &ApiError) -> Bytes {
    frame(
        vec![
            string(":message-type", "exception"),
            string(":exception-type", e.code.as_str()),
            string(":content-type", protocol.content_type()),
        ],
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
