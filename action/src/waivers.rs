//! Waivers: an ignore file (paths and fingerprints), a baseline of
//! fingerprints from an earlier JSON report (only new findings fail), and
//! the inline `keyguard:allow` (applied while scanning, see detect.rs).
//!
//! A change must not waive its own leak: in range mode the ignore file and
//! an in-repository baseline are read at the base commit, and the waivers
//! the change adds are listed for reviewers (`AddedWaiver`).

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

/// An ignore file is read at most this large.
pub const MAX_IGNORE_FILE: u64 = 1 << 20;

/// Why `path` is not read as an ignore file (none when it is missing or a
/// regular file of a sane size).
pub fn unreadable_ignore_file(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        Some("not a regular file (a symbolic link or a device is never followed)".into())
    } else if meta.len() > MAX_IGNORE_FILE {
        Some(format!("larger than {} KiB", MAX_IGNORE_FILE >> 10))
    } else {
        None
    }
}

impl IgnoreFile {
    /// Reads `path`; a missing file is an empty ignore list. Only a
    /// regular file of at most 1 MiB is read: a symbolic link to a device
    /// or a host file is refused, never followed.
    pub fn load(root: &Path, path: &Path) -> Result<Self, Error> {
        if let Some(why) = unreadable_ignore_file(path) {
            return Err(Error::Usage(format!(
                "ignore file {}: {why}",
                path.display()
            )));
        }
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
        Self::parse(root, &text, path)
    }

    /// Parses an ignore file's text; `path` names it in errors.
    pub fn parse(root: &Path, text: &str, path: &Path) -> Result<Self, Error> {
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
                // The pattern is not quoted: a file's text stays out of reports.
                builder.add_line(None, line).map_err(|_| {
                    Error::Usage(format!("{}: a line is no valid pattern", path.display()))
                })?;
            }
        }
        let paths = builder
            .build()
            .map_err(|_| Error::Usage(format!("{}: its patterns do not build", path.display())))?;
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
        Self::parse(&text, path)
    }

    /// Parses a JSON report's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let report: serde_json::Value = serde_json::from_str(text).map_err(|e| {
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

/// A waiver a change adds: reviewers see it, since it hides a finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddedWaiver {
    pub path: String,
    pub line: usize,
    /// What it waives, without any value.
    pub what: String,
}

/// Pure: the ignore-file lines in `head` that `base` does not have (blank
/// lines and comments aside), with their line numbers in `head`.
pub fn added_ignore_lines(base: &str, head: &str) -> Vec<(usize, String)> {
    let meaningful = |l: &str| {
        let l = l.trim();
        (!l.is_empty() && !l.starts_with('#')).then(|| l.to_string())
    };
    let before: HashSet<String> = base.lines().filter_map(meaningful).collect();
    head.lines()
        .enumerate()
        .filter_map(|(i, l)| Some((i + 1, meaningful(l)?)))
        .filter(|(_, l)| !before.contains(l))
        .collect()
}

/// Where a scan's waivers come from, as the command line says.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaiverFiles<'a> {
    /// `--no-ignore`: no ignore file at all.
    pub no_ignore: bool,
    /// `--ignore-file`, instead of the repository's `.keyguardignore`.
    pub ignore_file: Option<&'a Path>,
    /// `--baseline`.
    pub baseline: Option<&'a Path>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_meaningful_ignore_lines_count_as_added() {
        let cases = [
            ("nothing before", "", "sha256:aa\n", vec![(1, "sha256:aa")]),
            ("unchanged", "sha256:aa\n", "sha256:aa\n", vec![]),
            (
                "moved is not added",
                "a/\nsha256:aa\n",
                "sha256:aa\na/\n",
                vec![],
            ),
            ("comments and blanks", "", "# why\n\n", vec![]),
            (
                "whitespace is not a change",
                "sha256:aa\n",
                "  sha256:aa  \n",
                vec![],
            ),
            (
                "a path added",
                "sha256:aa\n",
                "sha256:aa\nsecrets/\n",
                vec![(2, "secrets/")],
            ),
        ];
        for (what, base, head, want) in cases {
            let want: Vec<(usize, String)> =
                want.into_iter().map(|(n, l)| (n, l.to_string())).collect();
            assert_eq!(added_ignore_lines(base, head), want, "{what}");
        }
    }
}
