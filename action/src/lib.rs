//! keyguard-scan: proves a repository, a pull request, its whole history or
//! stdin holds no X (Twitter) credential.
//!
//! Reading order: `rules/` (what is searched for, as data), `detect.rs` (how
//! a buffer is searched), `blob.rs` (bounded-memory reading), `sources/`
//! (trees, history, ranges, stdin), `waivers.rs`, `report/`, `verify.rs`,
//! `github/` (the Action and its PR comment).

#![forbid(unsafe_code)]

pub mod ascii_regex;
pub mod base_waivers;
pub mod blob;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod finding;
pub mod github;
pub mod known;
pub mod org;
pub mod path_text;
pub mod prefilter;
pub mod report;
pub mod rules;
pub mod run_cli;
pub mod scan;
pub mod sources;
pub mod verify;
pub mod waivers;

/// Errors that stop a scan (exit code 2). Problems with single inputs are
/// warnings in the report instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("`{command}` failed: {message}")]
    Git { command: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("GitHub API: {0}")]
    GitHub(String),
    /// The token may not write there (a pull request from a fork gets a
    /// read-only one).
    #[error("GitHub API refused the write: {0}")]
    GitHubForbidden(String),
}

/// Process exit codes.
pub mod exit {
    /// Nothing found.
    pub const CLEAN: i32 = 0;
    /// Credentials found.
    pub const FOUND: i32 = 1;
    /// The scan could not run.
    pub const ERROR: i32 = 2;
}
