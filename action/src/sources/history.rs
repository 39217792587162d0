//! Full history: every unique blob reachable from any ref or reflog entry
//! (older stashes live only in the stash's reflog), each scanned once, with
//! the first commit and path where a finding appeared. Opt-in: blobs no ref
//! reaches any more (`--unreachable`: dangling after a reset or an amended
//! commit, until git collects them) and commit messages.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::Mutex;

use super::git::{check_repository, first_appearance, git, read_header};
use super::SourceOutput;
use crate::blob::{BlobScanner, Outcome, CHUNK};
use crate::detect::Detector;
use crate::Error;

struct Job {
    blob: String,
    path: String,
    data: Vec<u8>,
}

/// What a history scan covers beyond reachable blobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryOptions {
    pub threads: usize,
    pub unreachable: bool,
    pub commit_messages: bool,
}

/// Blobs no ref or reflog reaches, as `git fsck` lists them.
fn unreachable_blobs(repo: &Path) -> Result<Vec<String>, Error> {
    let text = super::git::output(
        repo,
        &["fsck", "--unreachable", "--no-reflogs", "--no-progress"],
    )?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("unreachable blob "))
        .map(|sha| format!("{sha} (unreachable blob)\n"))
        .collect())
}

pub fn scan_history(
    repo: &Path,
    detector: &Detector,
    opts: HistoryOptions,
) -> Result<SourceOutput, Error> {
    check_repository(repo)?;
    let threads = opts.threads;
    let extra = match opts.unreachable {
        true => unreachable_blobs(repo)?,
        false => Vec::new(),
    };
    let git_err = |command: &str, e: std::io::Error| Error::Git {
        command: command.to_string(),
        message: e.to_string(),
    };
    let mut rev_list = git(repo)
        .args([
            "rev-list",
            "--objects",
            "--all",
            "--reflog",
            "--filter=object:type=blob",
            "--filter-provided-objects",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| git_err("git rev-list", e))?;
    let mut cat = git(repo)
        .args([
            "cat-file",
            "--batch=%(objectname) %(objecttype) %(objectsize) %(rest)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| git_err("git cat-file", e))?;
    // rev-list's objects, then the unreachable blobs, into cat-file.
    let mut objects = rev_list.stdout.take().unwrap();
    let mut feed = cat.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        use std::io::Write;
        std::io::copy(&mut objects, &mut feed)?;
        for line in extra {
            feed.write_all(line.as_bytes())?;
        }
        Ok(())
    });

    let out = Mutex::new(SourceOutput::default());
    let (tx, rx) = mpsc::sync_channel::<Job>(threads * 4);
    let rx = Mutex::new(rx);
    let read_result = std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut scanner = BlobScanner::new(detector);
                let mut local = SourceOutput::default();
                loop {
                    let job = match rx.lock().unwrap().recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    };
                    match super::archive::kind_of(&job.path) {
                        Some(kind) => {
                            let blob = job.blob.clone();
                            let tag =
                                move |f: &mut crate::finding::Finding| f.blob = Some(blob.clone());
                            let (path, data) = (&job.path, &job.data[..]);
                            super::archive::scan_into(
                                kind,
                                data,
                                path,
                                &mut scanner,
                                &mut local,
                                &tag,
                            );
                        }
                        None => scan_job(
                            &mut scanner,
                            &job.blob,
                            &job.path,
                            &job.data[..],
                            &mut local,
                        ),
                    }
                }
                local.stats.waived_inline += scanner.waived_inline as u64;
                absorb(&out, local);
            });
        }
        // Read every blob; small ones go to the workers, big ones are
        // scanned here in bounded chunks so memory stays flat.
        let mut stdout = BufReader::with_capacity(1 << 20, cat.stdout.take().unwrap());
        let mut big = BlobScanner::new(detector);
        let mut local = SourceOutput::default();
        let result = loop {
            let header = match read_header(&mut stdout) {
                Ok(Some(h)) => h,
                Ok(None) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break Ok(()),
                Err(e) => break Err(e),
            };
            let (id, kind, size) = header;
            let (blob, path) = id
                .split_once(' ')
                .map_or((id.clone(), String::new()), |(b, p)| {
                    (b.to_string(), p.to_string())
                });
            let body = (&mut stdout).take(size);
            if kind != "blob" {
                if let Err(e) = std::io::copy(&mut body.take(size), &mut std::io::sink()) {
                    break Err(e);
                }
            } else if size as usize > CHUNK {
                let mut body = body;
                scan_job(&mut big, &blob, &path, &mut body, &mut local);
                if let Err(e) = std::io::copy(&mut body, &mut std::io::sink()) {
                    break Err(e);
                }
            } else {
                let mut data = Vec::with_capacity(size as usize);
                if let Err(e) = body.take(size).read_to_end(&mut data) {
                    break Err(e);
                }
                if tx.send(Job { blob, path, data }).is_err() {
                    break Ok(());
                }
            }
            let mut nl = [0u8; 1];
            if let Err(e) = stdout.read_exact(&mut nl) {
                break Err(e);
            }
        };
        drop(tx);
        local.stats.waived_inline += big.waived_inline as u64;
        absorb(&out, local);
        result
    });
    let fed = feeder.join();
    let rev_status = rev_list.wait().map_err(|e| git_err("git rev-list", e))?;
    let _ = cat.wait();
    if !rev_status.success() {
        let mut message = String::new();
        if let Some(mut e) = rev_list.stderr.take() {
            let _ = e.read_to_string(&mut message);
        }
        return Err(Error::Git {
            command: "git rev-list --objects --all".into(),
            message: message.trim().to_string(),
        });
    }
    let mut out = out.into_inner().unwrap();
    if !matches!(fed, Ok(Ok(()))) {
        out.warnings
            .push("feeding objects to git cat-file stopped early".into());
    }
    if opts.commit_messages {
        scan_commit_messages(repo, &["--all", "--reflog"], detector, &mut out)?;
    }
    if let Err(e) = read_result {
        out.warnings
            .push(format!("reading git objects stopped early: {e}"));
    }
    if super::shallow::is_shallow(repo) {
        out.warnings.push(
            "shallow clone: only the fetched commits were scanned, not the whole history (use actions/checkout with `fetch-depth: 0`, or `git fetch --unshallow`)".into(),
        );
    }
    attribute_commits(repo, &mut out);
    Ok(out)
}

fn scan_job(
    scanner: &mut BlobScanner<'_>,
    blob: &str,
    path: &str,
    data: impl Read,
    out: &mut SourceOutput,
) {
    let findings = &mut out.findings;
    let outcome = scanner.scan(data, path, &mut |mut f| {
        f.blob = Some(blob.to_string());
        findings.push(f)
    });
    match outcome {
        Ok(Outcome::Scanned { bytes }) => {
            out.stats.scanned += 1;
            out.stats.bytes += bytes;
        }
        Ok(Outcome::Binary) => {
            out.stats.binary_skipped += 1;
            out.skipped.push(format!("{path} in blob {blob} (binary)"));
        }
        Err(e) => out
            .warnings
            .push(format!("skipped blob {blob} ({path}): {e}")),
    }
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

fn absorb(out: &Mutex<SourceOutput>, local: SourceOutput) {
    out.lock().unwrap_or_else(|p| p.into_inner()).absorb(local);
}

/// Findings name the oldest commit that introduced their blob, and the
/// path there (rev-list names a blob by the newest path it saw).
fn attribute_commits(repo: &Path, out: &mut SourceOutput) {
    let mut cache: std::collections::HashMap<String, Option<(crate::finding::CommitInfo, String)>> =
        Default::default();
    for f in &mut out.findings {
        let Some(blob) = f.blob.clone() else { continue };
        let first = cache
            .entry(blob.clone())
            .or_insert_with(|| first_appearance(repo, &blob));
        if let Some((commit, path)) = first {
            f.commit = Some(commit.clone());
            // An archive member keeps its place inside: `x.zip!/inner`.
            let inner = f.path.split_once("!/").map(|(_, inner)| inner.to_string());
            f.path = match inner {
                Some(inner) => format!("{path}!/{inner}"),
                None => path.clone(),
            };
        }
    }
    out.findings
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
}
