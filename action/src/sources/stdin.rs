//! Standard input, as one blob (`keyguard scan -`).

use std::io::Read;

use super::SourceOutput;
use crate::blob::{BlobScanner, Outcome};
use crate::detect::Detector;

pub fn scan_reader(reader: impl Read, name: &str, detector: &Detector) -> SourceOutput {
    let mut out = SourceOutput::default();
    let mut scanner = BlobScanner::new(detector);
    let findings = &mut out.findings;
    match scanner.scan(reader, name, &mut |f| findings.push(f)) {
        Ok(Outcome::Scanned { bytes }) => {
            out.stats.scanned = 1;
            out.stats.bytes = bytes;
        }
        Ok(Outcome::Binary) => out.stats.binary_skipped = 1,
        Err(err) => out.warnings.push(format!("reading {name}: {err}")),
    }
    out.stats.waived_inline = scanner.waived_inline as u64;
    out
}
