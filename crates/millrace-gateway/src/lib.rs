//! `millrace-gateway` serves the Amazon Kinesis Data Streams API over HTTP in front of a
//! [`millrace_stream::Store`], so the AWS CLI, boto3, aws-sdk-rust, the Java SDK and the KPL
//! work against millrace unchanged.
//!
//! It owns the wire: AWS JSON 1.1 and CBOR 1.1 framing ([`protocol`]), request field
//! validation with AWS-shaped messages ([`request`]), the AWS error types ([`error`], mapped in
//! one function), signed shard iterators ([`iterator`]) and one module per operation
//! ([`ops`]). Durability, routing and ordering live in `millrace-stream`, not here.
//! Identities ([`auth`]): under `[auth] mode = "log"` or `"enforce"` every request's SigV4
//! signature and IAM policies are checked (`millrace-auth`) before its operation runs; under
//! `"off"` (the default, loopback only) none are.

mod arn;
pub mod auth;
pub mod channels;
pub mod error;
pub mod eventstream;
pub mod iterator;
pub mod ops;
pub mod protocol;
pub mod request;
mod server;
pub mod shapes;
pub mod throttle;

pub use error::{ApiError, ErrorCode};
pub use iterator::IteratorCodec;
pub use server::{
    Gateway, MAX_BODY_BYTES, OpenError, Service, ServiceFuture, router, serve, serve_with,
};
