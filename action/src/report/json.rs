//! JSON: the machine-readable report, also the `--baseline` format.

use std::io::Write;

use serde_json::json;

use super::content::Report;

pub fn to_json(report: &Report) -> serde_json::Value {
    json!({
        "tool": "keyguard",
        "version": env!("CARGO_PKG_VERSION"),
        "target": report.target,
        "findings": report.findings.iter().map(|f| f.record()).collect::<Vec<_>>(),
        "ignored": report.ignored,
        "baselined": report.baselined,
        "warnings": report.warnings,
        "incomplete": report.incomplete,
        "addedWaivers": report.added_waivers,
        "examples": report.examples.iter().map(|e| {
            let mut record = serde_json::to_value(e.finding.record()).unwrap_or_default();
            record["publishedAt"] = json!(e.published_at);
            record
        }).collect::<Vec<_>>(),
        "stats": report.stats,
    })
}

pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_json(report))?;
    writeln!(out)
}
