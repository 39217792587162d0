//! Waivers: an ignore file (paths and fingerprints), a baseline of
//! fingerprints from an earlier JSON report (only new findings fail), and
//! the inline `keyguard:allow` (applied while scanning, see detect.rs).

use std::collections::HashSet;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::finding::Finding;
use crate::Error;

/// The ignore file looked for at the scanned root (and, in tree mode, in
/// every directory, like `.gitignore`).
pub const IGNORE_FILE_NAME: &str = ".keyguardignore";

/// Paths (gitignore syntax) and fingerprints (`sha256:...`) to ignore.
#[derive(Debug, Default)]
pub struct IgnoreFile {
    paths: Option<Gitignore>,
    fingerprints: HashSet<String>,
}

impl IgnoreFile {
    /// Reads `path`; a missing file is an empty ignore list.
    pub fn load(root: &Path, path: &Path) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(Error::Usage(format!(
                    "reading ignore file {}: {e}",
                    path.display()
                )))
            }
        };
        let mut builder = GitignoreBuilder::new(root);
        let mut fingerprints = HashSet::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("sha256:") {
                fingerprints.insert(line.split_whitespace().next().unwrap().to_string());
            } else {
                builder
                    .add_line(None, line)
                    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            }
        }
        let paths = builder
            .build()
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        Ok(IgnoreFile {
            paths: Some(paths),
            fingerprints,
        })
    }

    pub fn ignores(&self, finding: &Finding) -> bool {
        self.fingerprints.contains(finding.fingerprint().as_str())
            || self.paths.as_ref().is_some_and(|g| {
                g.matched_path_or_any_parents(&finding.path, false)
                    .is_ignore()
            })
    }
}

/// Fingerprints from a previous `--format json` report.
#[derive(Debug, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("reading baseline {}: {e}", path.display())))?;
        let report: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "baseline {} is not a keyguard JSON report: {e}",
                path.display()
            ))
        })?;
        let findings = report
            .get("findings")
            .and_then(|f| f.as_array())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "baseline {} has no `findings` list (write one with `keyguard scan --format json`)",
                    path.display()
                ))
            })?;
        Ok(Baseline {
            fingerprints: findings
                .iter()
                .filter_map(|f| f.get("fingerprint")?.as_str().map(str::to_string))
                .collect(),
        })
    }

    pub fn contains(&self, finding: &Finding) -> bool {
        self.fingerprints.contains(finding.fingerprint().as_str())
    }
}
