//! An X API emulator for tests and the demo. It follows the documented
//! behaviour the operator and scanner rely on, and checks credentials as
//! strictly as X: Basic auth of URL-encoded key:secret on a form body,
//! OAuth 1.0a HMAC-SHA1 signatures over the Host and path the client used
//! (timestamp window, single-use nonces, `realm` unsigned), bearer tokens
//! as issued or decoded (as X accepts them), user tokens that expire, confidential
//! clients that must authenticate, single-use refresh tokens, and rate
//! limits enforced per app and endpoint in fixed 15-minute windows. Faults
//! (429, 5xx, latency) can be injected.

mod credentials;
pub mod oauth1;
mod server;

pub use credentials::{seed, AccessLevel, App, AppCredentials};
pub use oauth1::{signature_base_string, verify_signature};
pub use server::{Fault, XApiEmulator};
