//! Reports of a scan. Every format shows findings redacted: a few leading
//! characters, the length and a fingerprint, never a value.

mod content;
mod github;
mod json;
mod sarif;
mod summary;
mod text;

pub use content::{Example, Report};
pub use github::{escape_data, escape_property, write_github};
pub use json::write_json;
pub use sarif::{failed_sarif, write_sarif};
pub use summary::{markdown_summary, COMMENT_MARKER};
pub use text::write_text;

/// Where the Action writes its JSON report, beside the SARIF file and
/// never over it (a SARIF file may itself end in `.json`).
pub fn json_beside(sarif: &std::path::Path) -> std::path::PathBuf {
    let json = sarif.with_extension("json");
    if json == sarif {
        sarif.with_extension("report.json")
    } else {
        json
    }
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Github,
}

/// Writes `report` in `format`.
pub fn write(report: &Report, format: Format, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    match format {
        Format::Text => write_text(report, out),
        Format::Json => write_json(report, out),
        Format::Sarif => write_sarif(report, out),
        Format::Github => write_github(report, out),
    }
}
