//! keyguard-scan: finds X (Twitter) credentials before they ship.

#![forbid(unsafe_code)]
