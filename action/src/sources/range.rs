//! A commit range (`BASE..HEAD`): what a pull request or push adds. Each
//! changed file's new content is scanned and compared with its previous
//! content, so only credentials the range introduces are reported, with
//! the commit that introduced them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::git::{check_repository, output, CatFile, RawChange};
use super::SourceOutput;
use crate::blob::BlobScanner;
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
    let fetched = check_range(repo, range)?;
    let changes = introduced_changes(repo, range)?;
    let mut scan = RangeScan {
        out: SourceOutput::default(),
        cat: CatFile::new(repo)?,
        scanner: BlobScanner::new(detector),
        old_findings: HashMap::new(),
    };
    scan.out.warnings.extend(fetched);
    scan.scanner.keep_waived = true;
    for (commit, change) in changes {
        scan.change(&commit, &change);
    }
    let mut out = scan.out;
    out.stats.waived_inline = scan.scanner.waived_inline as u64;
    if commit_messages {
        super::history::scan_commit_messages(repo, &[range], detector, &mut out)?;
    }
    Ok(out)
}

/// Both ends of `BASE..HEAD` are commits here (a shallow clone fetches
/// what it lacks first: what it fetched is returned, to be said).
fn check_range(repo: &Path, range: &str) -> Result<Option<String>, Error> {
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
    Ok(fetched)
}

/// Each blob the range adds, with the first commit and path that added
/// it, oldest first. Run in a subdirectory, only changes under it count
/// (paths stay relative to the repository root).
fn introduced_changes(repo: &Path, range: &str) -> Result<Vec<(CommitInfo, RawChange)>, Error> {
    let subdir = output(repo, &["rev-parse", "--show-prefix"])?
        .trim()
        .to_string();
    let mut seen = HashSet::new();
    Ok(super::git::raw_changes(repo, &["--reverse", "-m", range])?
        .into_iter()
        .filter(|(_, raw)| {
            raw.adds_content() && raw.path.starts_with(&subdir) && seen.insert(raw.new_blob.clone())
        })
        .collect())
}

/// One range scan's state: findings are what a change's new content has
/// that its old content did not.
struct RangeScan<'d> {
    out: SourceOutput,
    cat: CatFile,
    scanner: BlobScanner<'d>,
    /// Fingerprints found (or waived) in an old blob, by blob.
    old_findings: HashMap<String, HashSet<String>>,
}

impl RangeScan<'_> {
    fn change(&mut self, commit: &CommitInfo, change: &RawChange) {
        let Some(new) = read(&mut self.cat, &change.new_blob, &change.path, &mut self.out) else {
            return;
        };
        let before = if change.has_old() {
            self.findings_before(change)
        } else {
            HashSet::new()
        };
        let found = scan_content(&mut self.scanner, &new, &change.path, &mut self.out);
        let new_only = |f: &Finding| !before.contains(f.fingerprint().as_str());
        let tag = |mut f: Finding| {
            f.blob = Some(change.new_blob.clone());
            f.commit = Some(commit.clone());
            f
        };
        self.out
            .findings
            .extend(found.into_iter().filter(new_only).map(tag));
        let waived: Vec<Finding> = self.scanner.waived.drain(..).collect();
        self.out
            .added_inline_waivers
            .extend(waived.into_iter().filter(new_only).map(tag));
    }

    /// What the change's old blob held, found or already waived (a waiver
    /// there before is not one the change adds).
    fn findings_before(&mut self, change: &RawChange) -> HashSet<String> {
        if let Some(cached) = self.old_findings.get(&change.old_blob) {
            return cached.clone();
        }
        let old =
            read(&mut self.cat, &change.old_blob, &change.path, &mut self.out).unwrap_or_default();
        // What reading the old content could not do is not this change's.
        let mut unused = SourceOutput::default();
        let mut prints: HashSet<String> =
            scan_content(&mut self.scanner, &old, &change.path, &mut unused)
                .iter()
                .map(|f| f.fingerprint().to_string())
                .collect();
        for f in self.scanner.waived.drain(..) {
            prints.insert(f.fingerprint().to_string());
        }
        self.old_findings
            .insert(change.old_blob.clone(), prints.clone());
        prints
    }
}

/// The findings in a blob's content (an archive's in its members, as tree
/// and history scans open them); counts, warnings and what a limit left
/// unread go to `out`.
fn scan_content(
    scanner: &mut BlobScanner<'_>,
    data: &[u8],
    path: &str,
    out: &mut SourceOutput,
) -> Vec<Finding> {
    if let Some(kind) = super::archive::kind_of(path) {
        let mut part = SourceOutput::default();
        super::archive::scan_into(kind, data, path, scanner, &mut part, &|_| {});
        let found = std::mem::take(&mut part.findings);
        out.absorb(part);
        return found;
    }
    let mut found = Vec::new();
    let outcome = scanner.scan(data, path, &mut |f| found.push(f));
    out.count(outcome, path);
    found
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
