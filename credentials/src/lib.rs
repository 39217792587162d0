//! What the operator and the scanner both know about X (Twitter) credentials.
//!
//! This is the one place that says which credentials exist, what the operator
//! calls them in Secrets, what they look like on the wire, and how a value is
//! named in logs, status and reports without being shown (a fingerprint).

#![forbid(unsafe_code)]

mod fingerprint;
mod kind;
mod oauth;
mod oauth1;
mod placeholder;
mod shape;

pub use fingerprint::{fingerprint, redact, Fingerprint, SecretValue};
pub use kind::CredentialKey;
pub use oauth::{basic_authorization, bearer_for_header, scrub_server_text};
pub use oauth1::{oauth1_authorization, OAuth1Keys};
pub use placeholder::{looks_like_placeholder, PLACEHOLDER_WORDS};
pub use shape::{base64_marker_variants, Shape, BEARER_TOKEN_PREFIX};
