//! A commit range (`BASE..HEAD`): what a pull request or push adds. Each
//! changed file's new content is scanned and compared with its previous
//! content, so only credentials the range introduces are reported, with
//! the commit that introduced them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::git::{check_repository, output, CatFile, RawChange};
use super::SourceOutput;
use crate::blob::{BlobScanner, Outcome};
use crate::detect::Detector;
use crate::finding::{CommitInfo, Finding};
use crate::Error;

pub fn scan_range(
    repo: &Path,
    range: &str,
    commit_messages: bool,
    detector: &Detector,
) -> Result<SourceOutput, Error> {
    check_repository(repo)?;
    if !range.contains("..") {
        return Err(Error::Usage(format!(
            "--range expects BASE..HEAD (got {range:?})"
        )));
    }
    let (base, head) = super::git::range_ends(range);
    let fetched = super::shallow::ensure_range(repo, &base, &head)?;
    for end in range
        .split("..")
        .map(|e| e.trim_start_matches('.'))
        .filter(|e| !e.is_empty())
    {
        output(repo, &["rev-parse", "--verify", "--quiet", &format!("{end}^{{commit}}")]).map_err(|_| {
            Error::Usage(format!(
                "--range {range}: {end:?} is not a commit in this repository (for a pull request, fetch the base first: `git fetch origin <base>` or `actions/checkout` with `fetch-depth: 0`)"
            ))
        })?;
    }
    let log = output(
        repo,
        &[
            "log",
            "--reverse",
            "-m",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            "--format=commit %H%x09%an%x09%aI",
            range,
        ],
    )?;
    // (new blob) -> (commit, path, old blob): first introduction only.
    // Run in a subdirectory, only changes under it count (paths stay
    // relative to the repository root).
    let subdir = output(repo, &["rev-parse", "--show-prefix"])?
        .trim()
        .to_string();
    let mut changes: Vec<(CommitInfo, RawChange)> = Vec::new();
    let mut seen = HashSet::new();
    let mut commit: Option<CommitInfo> = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("commit ") {
            let mut f = rest.split('\t');
            commit = Some(CommitInfo {
                commit: f.next().unwrap_or_default().to_string(),
                author: f.next().map(str::to_string),
                date: f.next().map(str::to_string),
            });
        } else if let (Some(raw), Some(c)) = (RawChange::parse(line), &commit) {
            if raw.adds_content()
                && raw.path.starts_with(&subdir)
                && seen.insert(raw.new_blob.clone())
            {
                changes.push((c.clone(), raw));
            }
        }
    }

    let mut out = SourceOutput::default();
    out.warnings.extend(fetched);
    let mut cat = CatFile::new(repo)?;
    let mut scanner = BlobScanner::new(detector);
    scanner.keep_waived = true;
    let mut old_findings: HashMap<String, HashSet<String>> = HashMap::new();
    for (commit, change) in changes {
        let Some(new) = read(&mut cat, &change.new_blob, &change.path, &mut out) else {
            continue;
        };
        let before: HashSet<String> = if change.has_old() {
            if let Some(cached) = old_findings.get(&change.old_blob) {
                cached.clone()
            } else {
                let old =
                    read(&mut cat, &change.old_blob, &change.path, &mut out).unwrap_or_default();
                let mut prints = HashSet::new();
                let _ = scanner.scan(&old[..], &change.path, &mut |f: Finding| {
                    prints.insert(f.fingerprint().to_string());
                });
                // Already waived before the change: not a waiver it adds.
                for f in scanner.waived.drain(..) {
                    prints.insert(f.fingerprint().to_string());
                }
                old_findings.insert(change.old_blob.clone(), prints.clone());
                prints
            }
        } else {
            HashSet::new()
        };
        let mut found = Vec::new();
        match scanner.scan(&new[..], &change.path, &mut |f| found.push(f)) {
            Ok(Outcome::Scanned { bytes }) => {
                out.stats.scanned += 1;
                out.stats.bytes += bytes;
            }
            Ok(Outcome::Binary) => {
                out.stats.binary_skipped += 1;
                out.skipped.push(format!("{} (binary)", change.path));
            }
            Err(e) => out.warnings.push(format!("skipped {}: {e}", change.path)),
        }
        for mut f in found {
            if before.contains(f.fingerprint().as_str()) {
                continue;
            }
            f.blob = Some(change.new_blob.clone());
            f.commit = Some(commit.clone());
            out.findings.push(f);
        }
        for mut f in scanner.waived.drain(..) {
            if before.contains(f.fingerprint().as_str()) {
                continue;
            }
            f.blob = Some(change.new_blob.clone());
            f.commit = Some(commit.clone());
            out.added_inline_waivers.push(f);
        }
    }
    out.stats.waived_inline = scanner.waived_inline as u64;
    if commit_messages {
        super::history::scan_commit_messages(repo, &[range], detector, &mut out)?;
    }
    Ok(out)
}

fn read(cat: &mut CatFile, sha: &str, path: &str, out: &mut SourceOutput) -> Option<Vec<u8>> {
    match cat.read(sha) {
        Ok(Some(data)) => Some(data),
        // Unread is not clean: the scan of the change is incomplete.
        Ok(None) => {
            out.incomplete
                .push(format!("{path}: blob {sha} is missing from the repository"));
            None
        }
        Err(e) => {
            out.incomplete
                .push(format!("{path}: reading blob {sha}: {e}"));
            None
        }
    }
}
