//! GitHub workflow commands: one `::error` annotation per finding.

use std::io::Write;

use super::content::Report;

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn write_github(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &report.findings {
        writeln!(
            out,
            "::error file={},line={},col={},title={}::{}",
            escape_property(&f.path),
            f.line,
            f.column,
            escape_property(&format!("keyguard: {}", f.rule_name)),
            escape_data(&f.message())
        )?;
    }
    for w in &report.added_waivers {
        writeln!(
            out,
            "::warning file={},line={},title={}::{}",
            escape_property(&w.path),
            w.line.max(1),
            escape_property("keyguard: waiver added by this change"),
            escape_data(&format!("{} (review it: it hides a finding)", w.what))
        )?;
    }
    for w in &report.warnings {
        writeln!(out, "::warning title=keyguard::{}", escape_data(w))?;
    }
    for i in &report.incomplete {
        writeln!(
            out,
            "::error title=keyguard incomplete scan::{}",
            escape_data(i)
        )?;
    }
    writeln!(
        out,
        "keyguard: {} finding(s) in {}",
        report.findings.len(),
        report.target
    )
}
