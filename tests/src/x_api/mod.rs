//! An X API emulator for tests and the demo. It follows the documented
//! behaviour the operator and scanner rely on, and checks credentials for
//! real: Basic auth of URL-encoded key:secret, OAuth 1.0a HMAC-SHA1
//! signatures, bearer and user tokens, single-use refresh tokens. Every
//! response carries `x-rate-limit-*` headers; faults (429, 5xx, latency)
//! can be injected.

mod credentials;
mod oauth1;
mod server;

pub use credentials::{AccessLevel, App, AppCredentials};
pub use oauth1::{signature_base_string, verify_signature};
pub use server::{Fault, XApiEmulator};
