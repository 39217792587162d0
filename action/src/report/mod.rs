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
pub use sarif::{failed_sarif, to_sarif, write_sarif};
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

/// Writes a report file; the error names the file.
pub fn write_file(
    path: &std::path::Path,
    f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), crate::Error> {
    let io = |source| crate::Error::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    f(&mut file).map_err(io)
}

/// Writes a report to `output`, or to stdout when there is none.
pub fn write_out(
    output: Option<&std::path::Path>,
    f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), crate::Error> {
    if let Some(path) = output {
        return write_file(path, f);
    }
    match f(&mut std::io::stdout().lock()) {
        // `keyguard scan | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|source| crate::Error::Io {
            what: "writing the report".into(),
            source,
        }),
    }
}

/// Appends to the job summary when running in GitHub Actions.
pub fn append_step_summary(markdown: &str) -> Result<(), crate::Error> {
    use std::io::Write;
    let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let io = |what: &str| {
        let what = what.to_string();
        move |source| crate::Error::Io { what, source }
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&summary)
        .map_err(io("opening $GITHUB_STEP_SUMMARY"))?
        .write_all(markdown.as_bytes())
        .map_err(io("writing $GITHUB_STEP_SUMMARY"))
}
