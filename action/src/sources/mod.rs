//! Where scanned bytes come from: a working tree, git history, a commit
//! range, or stdin. Each source yields findings and warnings; a source that
//! cannot run at all is an error.

pub mod archive;
pub(crate) mod git;
pub mod history;
pub(crate) mod objects;
pub mod range;
pub mod shallow;
pub mod stdin;
pub mod tree;

use crate::finding::Finding;

/// Counts for the summary.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Files or blobs scanned.
    pub scanned: u64,
    pub bytes: u64,
    pub binary_skipped: u64,
    pub waived_inline: u64,
}

/// What a source found.
#[derive(Debug, Default)]
pub struct SourceOutput {
    pub findings: Vec<Finding>,
    /// Inputs that could not be read, with why; the rest was scanned.
    pub warnings: Vec<String>,
    pub stats: Stats,
    /// Findings that an inline `keyguard:allow` added by the scanned change
    /// waives (range mode only).
    pub added_inline_waivers: Vec<Finding>,
    /// Inputs not scanned, with why (binary), for verbose output.
    pub skipped: Vec<String>,
    /// What a limit kept unread: the scan is incomplete, which is an error
    /// (exit 2), never a clean result.
    pub incomplete: Vec<String>,
}

impl SourceOutput {
    /// Counts how one input went: scanned, skipped as binary (listed for
    /// `--verbose`), or unreadable (a warning). `name` says which input.
    pub fn count(&mut self, outcome: std::io::Result<crate::blob::Outcome>, name: &str) {
        match outcome {
            Ok(crate::blob::Outcome::Scanned { bytes }) => {
                self.stats.scanned += 1;
                self.stats.bytes += bytes;
            }
            Ok(crate::blob::Outcome::Binary) => {
                self.stats.binary_skipped += 1;
                self.skipped.push(format!("{name} (binary)"));
            }
            Err(e) => self.warnings.push(format!("skipped {name}: {e}")),
        }
    }

    /// Adds another source's results to these.
    pub fn absorb(&mut self, mut other: SourceOutput) {
        self.findings.append(&mut other.findings);
        self.warnings.append(&mut other.warnings);
        self.incomplete.append(&mut other.incomplete);
        self.skipped.append(&mut other.skipped);
        self.added_inline_waivers
            .append(&mut other.added_inline_waivers);
        self.stats.scanned += other.stats.scanned;
        self.stats.bytes += other.stats.bytes;
        self.stats.binary_skipped += other.stats.binary_skipped;
        self.stats.waived_inline += other.stats.waived_inline;
    }
}
