//! Human-readable text.

use std::io::Write;

use super::content::Report;

pub fn write_text(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &report.findings {
        write!(out, "{}:{}:{}: {}", f.path, f.line, f.column, f.message())?;
        if let Some(c) = &f.commit {
            write!(out, " in commit {}", &c.commit[..c.commit.len().min(12)])?;
        }
        if f.verification != Default::default() {
            write!(out, " [{:?}]", f.verification)?;
            if let Some(reason) = f.verification_reason {
                write!(out, " ({reason})")?;
            }
        }
        writeln!(out)?;
    }
    for e in &report.examples {
        let f = &e.finding;
        writeln!(
            out,
            "{}:{}:{}: note: X's published example {} ({}), not a leak: {}",
            f.path,
            f.line,
            f.column,
            f.credential.display_name(),
            e.published_at,
            f.redacted()
        )?;
    }
    for w in &report.added_waivers {
        writeln!(
            out,
            "{}:{}: waiver added by this change: {}",
            w.path, w.line, w.what
        )?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for i in &report.incomplete {
        writeln!(out, "error: incomplete scan: {i}")?;
    }
    let s = &report.stats;
    writeln!(
        out,
        "keyguard: {} finding(s) in {} ({} scanned, {} bytes, {} binary skipped; waived: {} inline, {} ignored, {} in baseline)",
        report.findings.len(),
        report.target,
        s.scanned,
        s.bytes,
        s.binary_skipped,
        s.waived_inline,
        report.ignored,
        report.baselined
    )
}
