//! Full history: every unique blob reachable from any ref or reflog entry
//! (older stashes live only in the stash's reflog), each scanned once, with
//! the first commit and path where a finding appeared. Opt-in: blobs no ref
//! reaches any more (`--unreachable`: dangling after a reset or an amended
//! commit, until git collects them) and commit messages. Reading and
//! scanning the blobs is `objects.rs`'.

use std::path::Path;

use super::git::{check_repository, first_appearances};
use super::SourceOutput;
use crate::blob::BlobScanner;
use crate::detect::Detector;
use crate::Error;

/// What a history scan covers beyond reachable blobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryOptions {
    pub threads: usize,
    pub unreachable: bool,
    pub commit_messages: bool,
}

/// Blobs no ref or reflog reaches, as `git fsck` lists them (a blob a
/// reflog still reaches is read with the reachable ones, once), each
/// named by the unreachable commit that added it and its path there when
/// one did (a commit reset away), for cat-file's `%(rest)`; and those
/// commits' attributions.
fn unreachable_blobs(repo: &Path) -> Result<(Vec<String>, Attributions), Error> {
    let text = super::git::output(repo, &["fsck", "--unreachable", "--no-progress"])?;
    let of_type = |kind: &str| -> Vec<String> {
        let prefix = format!("unreachable {kind} ");
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::to_string)
            .collect()
    };
    let blobs = of_type("blob");
    let attributions = match of_type("commit") {
        commits if commits.is_empty() || blobs.is_empty() => Attributions::new(),
        commits => introductions(repo, &commits)?,
    };
    let lines = blobs
        .iter()
        .map(|sha| match attributions.get(sha) {
            Some((_, path)) => format!("{sha} {path}\n"),
            None => format!("{sha} (unreachable blob)\n"),
        })
        .collect();
    Ok((lines, attributions))
}

/// Blob → the oldest commit that added it and its path there.
type Attributions = std::collections::HashMap<String, (crate::finding::CommitInfo, String)>;

/// Which commit first added each blob, walking back from `commits`.
fn introductions(repo: &Path, commits: &[String]) -> Result<Attributions, Error> {
    let mut args = vec!["--reverse"];
    args.extend(commits.iter().map(String::as_str));
    let mut found = Attributions::new();
    for (commit, raw) in super::git::raw_changes(repo, &args)? {
        if raw.adds_content() {
            found
                .entry(raw.new_blob.clone())
                .or_insert((commit, raw.path));
        }
    }
    Ok(found)
}

pub fn scan_history(
    repo: &Path,
    detector: &Detector,
    opts: HistoryOptions,
) -> Result<SourceOutput, Error> {
    check_repository(repo)?;
    let (extra, unreachable) = match opts.unreachable {
        true => unreachable_blobs(repo)?,
        false => (Vec::new(), Attributions::new()),
    };
    let names = super::objects::Names {
        every_reachable: true,
        listed: extra,
    };
    let pool = super::objects::Pool {
        threads: opts.threads,
        keep_waived: false,
    };
    let mut out = super::objects::scan_blobs(repo, &names, detector, pool);
    if opts.commit_messages {
        scan_commit_messages(repo, &["--all", "--reflog"], detector, &mut out)?;
    }
    if super::shallow::is_shallow(repo) {
        out.warnings.push(
            "shallow clone: only the fetched commits were scanned, not the whole history (use actions/checkout with `fetch-depth: 0`, or `git fetch --unshallow`)".into(),
        );
    }
    attribute_commits(repo, &unreachable, &mut out);
    Ok(out)
}

/// The messages of the commits `revs` selects (git log's arguments), each
/// as an input named `commit <sha> (message)`.
pub(crate) fn scan_commit_messages(
    repo: &Path,
    revs: &[&str],
    detector: &Detector,
    out: &mut SourceOutput,
) -> Result<(), Error> {
    let mut args = vec!["log", "--format=%H%x1f%an%x1f%aI%x1f%B%x1e"];
    args.extend_from_slice(revs);
    let log = super::git::output(repo, &args)?;
    let mut scanner = BlobScanner::new(detector);
    for record in log.split('\x1e') {
        let mut f = record.trim_start_matches('\n').splitn(4, '\x1f');
        let (Some(sha), Some(author), Some(date), Some(message)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let commit = crate::finding::CommitInfo {
            commit: sha.to_string(),
            author: Some(author.to_string()),
            date: Some(date.to_string()),
        };
        let path = format!("commit {} (message)", &sha[..sha.len().min(12)]);
        let findings = &mut out.findings;
        if scanner
            .scan(message.as_bytes(), &path, &mut |mut found| {
                found.commit = Some(commit.clone());
                findings.push(found)
            })
            .is_ok()
        {
            out.stats.scanned += 1;
            out.stats.bytes += message.len() as u64;
        }
    }
    out.stats.waived_inline += scanner.waived_inline as u64;
    Ok(())
}

/// Findings name the oldest commit that introduced their blob, and the
/// path there (rev-list names a blob by the newest path it saw); a blob
/// only an unreachable commit holds, that commit. All blobs are placed by
/// one walk of the history; when that walk fails, findings keep the path
/// rev-list gave and the scan says why they have no commit.
fn attribute_commits(repo: &Path, unreachable: &Attributions, out: &mut SourceOutput) {
    let blobs: std::collections::HashSet<String> =
        out.findings.iter().filter_map(|f| f.blob.clone()).collect();
    let first = first_appearances(repo, &blobs).unwrap_or_else(|e| {
        out.warnings
            .push(format!("findings are not attributed to commits: {e}"));
        Default::default()
    });
    for f in &mut out.findings {
        let Some(blob) = f.blob.as_deref() else {
            continue;
        };
        let Some((commit, path)) = first.get(blob).or_else(|| unreachable.get(blob)) else {
            continue;
        };
        f.commit = Some(commit.clone());
        // An archive member keeps its place inside: `x.zip!/inner`.
        let inner = f.path.split_once("!/").map(|(_, inner)| inner.to_string());
        f.path = match inner {
            Some(inner) => format!("{path}!/{inner}"),
            None => path.clone(),
        };
    }
    out.findings
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
}
