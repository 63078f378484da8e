//! The domain error. Every layer below the wire adapters speaks this type; each dialect (`api::rc`, `api::stack`,
//! `api::locoia`, `oauth`) renders it through its own single table.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named kind of record does not exist ("app", "user", "link", ...).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field failed validation; `reason` is safe to show to the caller.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A uniqueness rule would break; `what` names the taken value's field (e.g. "username").
    #[error("{field} {value} is already in use")]
    Conflict { field: &'static str, value: String },
    /// The action would break a rule that is not about one field (e.g. removing the last admin).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    /// Too many attempts; retry after `retry_after_ms`.
    #[error("too many requests")]
    RateLimited {
        limit: u32,
        remaining: u32,
        reset_at_ms: i64,
        retry_after_ms: i64,
    },
    /// A bounded queue (argon2) is full: back off.
    #[error("server busy")]
    Busy,
    /// The store cannot write (a full disk, an IO error): the write is not known to be durable. A 503 in every
    /// dialect, promptly; the cause is logged where it happens.
    #[error("storage unavailable")]
    Unavailable,
    /// The store failed; the cause is logged where it happens, the caller sees an opaque 500.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl fmt::Display) -> Self {
        Error::Invalid {
            field,
            reason: reason.to_string(),
        }
    }

    pub fn internal(cause: impl fmt::Display) -> Self {
        let cause = cause.to_string();
        tracing::error!(%cause, "internal error");
        Error::Internal(cause)
    }
}

impl From<crate::crypto::HashError> for Error {
    fn from(e: crate::crypto::HashError) -> Self {
        match e {
            crate::crypto::HashError::Busy => Error::Busy,
            other => Error::internal(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
