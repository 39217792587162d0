//! What the operator and the scanner both know about X (Twitter) credentials.
//!
//! This is the one place that says which credentials exist, what the operator
//! calls them in Secrets, what they look like on the wire, and how a value is
//! named in logs, status and reports without being shown (a fingerprint).

#![forbid(unsafe_code)]

mod fingerprint;
mod kind;
mod shape;

pub use fingerprint::{fingerprint, redact, Fingerprint, SecretValue};
pub use kind::{CredentialKey, Rotatable};
pub use shape::{base64_marker_variants, shapes, Shape, BEARER_TOKEN_PREFIX};
