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
    pub stats: Stats,
    /// Waivers the scanned change adds (range mode), for reviewers.
    pub added_waivers: Vec<crate::waivers::AddedWaiver>,
    /// Inputs not scanned, with why (shown with `--verbose`).
    pub skipped: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}
