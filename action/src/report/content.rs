//! What a report holds, whatever its format: the findings after waivers,
//! what was waived, warnings and what was scanned.

use crate::finding::Finding;
use crate::sources::Stats;

/// The outcome of a scan after waivers.
#[derive(Debug, Default)]
pub struct Report {
    /// What was scanned, e.g. `tree .` or `range main..HEAD`.
    pub target: String,
    /// Findings that fail the scan.
    pub findings: Vec<Finding>,
    /// Findings waived by the ignore file.
    pub ignored: usize,
    /// Findings already in the baseline.
    pub baselined: usize,
    pub warnings: Vec<String>,
    /// What a limit kept unread: the scan is incomplete (exit 2).
    pub incomplete: Vec<String>,
    pub stats: Stats,
    /// Waivers the scanned change adds (range mode), for reviewers.
    pub added_waivers: Vec<crate::waivers::AddedWaiver>,
    /// Inputs not scanned, with why (shown with `--verbose`).
    pub skipped: Vec<String>,
    /// X's own published example values where they appear: no leak, so
    /// never failing a scan, but listed.
    pub examples: Vec<Example>,
}

/// A finding whose value X publishes as an example.
#[derive(Debug)]
pub struct Example {
    pub finding: Finding,
    pub published_at: String,
}

impl Report {
    /// No findings, and everything was read: only this exits 0.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.incomplete.is_empty()
    }

    /// The exit code: incomplete is an error (2) whatever was found, since
    /// a limit that stopped reading is never a clean result; then found
    /// (1, unless `fail` is off), else clean (0).
    pub fn exit_code(&self, fail: bool) -> i32 {
        if !self.incomplete.is_empty() {
            crate::exit::ERROR
        } else if self.findings.is_empty() || !fail {
            crate::exit::CLEAN
        } else {
            crate::exit::FOUND
        }
    }
}
