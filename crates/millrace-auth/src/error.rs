//! Why a request was refused, in AWS's words. Each API maps these to its wire errors in one
//! place (the Kinesis gateway's `error.rs`, the endpoint's error responses) through
//! [`AuthError::aws_code`] and [`AuthError::status`].

/// A request that did not prove who sent it, or whose sender may not do what it asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query.
    #[error("Missing Authentication Token")]
    MissingToken,
    /// A signature that lacks a part (Credential, SignedHeaders, Signature, a date).
    #[error("{0}")]
    Incomplete(String),
    /// An access key that no identity holds, or that is inactive.
    #[error("The security token included in the request is invalid.")]
    UnknownKey { access_key_id: String },
    /// The signature does not match, or its scope names another service or region.
    #[error("{0}")]
    BadSignature(String),
    /// Signed more than 15 minutes from the server's clock (or a presigned URL past its
    /// expiry).
    #[error("{0}")]
    Expired(String),
    /// Authenticated, but no policy allows the action on the resource, or one denies it.
    #[error(
        "User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
    )]
    Denied {
        principal: String,
        action: String,
        resource: String,
        why: String,
    },
}

/// The message AWS gives a signature that does not match.
pub const MISMATCH: &str = "The request signature we calculated does not match the signature \
                            you provided. Check your AWS Secret Access Key and signing method. \
                            Consult the service documentation for details.";

impl AuthError {
    /// The error type AWS's JSON services send (`__type`).
    pub fn aws_code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey { .. } => "UnrecognizedClientException",
            AuthError::BadSignature(_) => "InvalidSignatureException",
            AuthError::Expired(_) => "RequestExpired",
            AuthError::Denied { .. } => "AccessDeniedException",
        }
    }

    /// The HTTP status AWS answers it with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::MissingToken => 403,
            _ => 400,
        }
    }

    /// True for a failure to authenticate (as opposed to an authenticated caller denied).
    pub fn is_authentication(&self) -> bool {
        !matches!(self, AuthError::Denied { .. })
    }
}
