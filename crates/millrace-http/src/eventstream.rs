//! AWS event stream framing (`application/vnd.amazon.eventstream`), for the replies that are a
//! stream of messages: Kinesis SubscribeToShard (the gateway) and SageMaker Runtime's
//! InvokeEndpointWithResponseStream (the endpoint). Each message is a prelude, headers, a
//! payload and CRCs, written by `aws-smithy-eventstream`, the code the AWS SDKs read them with.
//!
//! An event carries `:message-type` `event`, its `:event-type` and the payload's
//! `:content-type`; an error ends the stream as `:message-type` `exception` with its
//! `:exception-type`. What goes in the payload (JSON, CBOR, raw bytes) is the caller's: this
//! module knows nothing about either API.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;

/// The `Content-Type` of a reply that is an event stream.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// One message with these headers and payload, framed.
fn frame(headers: Vec<Header>, payload: Vec<u8>) -> Bytes {
    let message = Message::new_from_parts(headers, payload);
    let mut buf = Vec::with_capacity(message.payload().len() + 128);
    write_message_to(&message, &mut buf).expect("an event is within the frame limits");
    Bytes::from(buf)
}

fn string(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

/// An event of type `event_type` whose payload is `payload`, encoded as `content_type` says.
pub fn event(event_type: &str, content_type: &str, payload: Vec<u8>) -> Bytes {
    frame(
        vec![
            string(":message-type", "event"),
            string(":event-type", event_type),
            string(":content-type", content_type),
        ],
        payload,
    )
}

/// An error in the stream (the last message): `:message-type` `exception` and the error's type
/// in `:exception-type`; `payload` is the error structure encoded as `content_type` says.
pub fn exception(exception_type: &str, content_type: &str, payload: Vec<u8>) -> Bytes {
    frame(
        vec![
            string(":message-type", "exception"),
            string(":exception-type", exception_type),
            string(":content-type", content_type),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;
    use aws_smithy_eventstream::smithy::parse_response_headers;

    #[test]
    fn events_read_back_with_the_sdk_decoder() {
        let bytes = event(
            "PayloadPart",
            "application/octet-stream",
            b"{\"x\":1}\n".to_vec(),
        );
        let mut rest = &bytes[..];
        let m = read_message_from(&mut rest).unwrap();
        assert!(rest.is_empty(), "one message, nothing after it");
        let h = parse_response_headers(&m).unwrap();
        assert_eq!(h.message_type.as_str(), "event");
        assert_eq!(h.smithy_type.as_str(), "PayloadPart");
        assert_eq!(
            h.content_type.map(|c| c.as_str().to_owned()).as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(&m.payload()[..], b"{\"x\":1}\n");
    }

    #[test]
    fn exceptions_name_their_type() {
        let bytes = exception(
            "InternalStreamFailure",
            "application/json",
            br#"{"Message":"boom"}"#.to_vec(),
        );
        let m = read_message_from(&bytes[..]).unwrap();
        let h = parse_response_headers(&m).unwrap();
        assert_eq!(h.message_type.as_str(), "exception");
        assert_eq!(h.smithy_type.as_str(), "InternalStreamFailure");
        assert_eq!(&m.payload()[..], br#"{"Message":"boom"}"#);
    }
}
