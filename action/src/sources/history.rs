//! Full history: every unique blob reachable from any ref or reflog entry
//! (older stashes live only in the stash's reflog), each scanned once, with
//! the first commit and path where a finding appeared. Opt-in: blobs no ref
//! reaches any more (`--unreachable`: dangling after a reset or an amended
//! commit, until git collects them) and commit messages.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;

use super::git::{check_repository, first_appearances, git, read_header, Header};
use super::SourceOutput;
use crate::blob::{BlobScanner, CHUNK};
use crate::detect::Detector;
use crate::Error;

struct Job {
    blob: String,
    path: String,
    data: Vec<u8>,
}

/// Small blobs travel to the workers in batches of about this many bytes:
/// one message per blob woke a worker per blob, and the wake-ups cost more
/// than scanning a small blob.
const BATCH_BYTES: usize = 1 << 20;

/// Jobs waiting to be sent as one message.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    bytes: usize,
}

impl Batch {
    /// Adds a job; a full batch is sent. False when the workers are gone.
    fn push(&mut self, job: Job, tx: &mpsc::SyncSender<Vec<Job>>) -> bool {
        self.bytes += job.data.len() + job.path.len() + 64;
        self.jobs.push(job);
        self.bytes < BATCH_BYTES || self.flush(tx)
    }

    fn flush(&mut self, tx: &mpsc::SyncSender<Vec<Job>>) -> bool {
        self.bytes = 0;
        let jobs = std::mem::take(&mut self.jobs);
        jobs.is_empty() || tx.send(jobs).is_ok()
    }
}

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
    let mut out = read_every_object(repo, extra, detector, opts.threads);
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

/// How many unreadable objects a scan steps over before it stops.
const MAX_UNREADABLE: u64 = 16;

/// Reads and scans every object. An object git cannot read (a corrupt
/// one) ends cat-file: it is recorded as unread (the scan is incomplete)
/// and a new stream goes on after it, so one bad object costs only itself.
fn read_every_object(
    repo: &Path,
    extra: Vec<String>,
    detector: &Detector,
    threads: usize,
) -> SourceOutput {
    let out = Mutex::new(SourceOutput::default());
    let mut skip = 0;
    let mut local = SourceOutput::default();
    for pass in 0..=MAX_UNREADABLE {
        let mut stream = match ObjectStream::start(repo, extra.clone(), skip) {
            Ok(stream) => stream,
            Err(e) => {
                local.incomplete.push(format!("reading git objects: {e}"));
                break;
            }
        };
        let read = scan_objects(&mut stream, detector, threads, &out);
        let answered = stream.answered;
        if stream.finish(read, &mut local) == Ended::Complete {
            break;
        }
        // The object after the last one answered is the one git could not read.
        skip += answered + 1;
        if pass == MAX_UNREADABLE {
            local.incomplete.push(format!(
                "stopped after {MAX_UNREADABLE} unreadable objects: the rest of the history is unread"
            ));
        }
    }
    let mut out = out.into_inner().unwrap_or_else(|p| p.into_inner());
    out.absorb(local);
    out
}

/// How a stream of objects ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Complete,
    /// cat-file stopped before its input's end (an unreadable object).
    CatFileFailed,
}

/// Every object `git rev-list --objects --all --reflog` names (blobs
/// only, missing ones listed rather than fatal), then the unreachable
/// blobs, read by one `git cat-file --batch`.
struct ObjectStream {
    rev_list: Child,
    cat: Child,
    feeder: std::thread::JoinHandle<std::io::Result<()>>,
    /// Objects cat-file answered in full.
    answered: u64,
}

impl ObjectStream {
    /// Starts after the first `skip` objects (read, or unreadable, by an
    /// earlier stream).
    fn start(repo: &Path, extra: Vec<String>, skip: u64) -> Result<Self, Error> {
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
                "--missing=print",
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
        let mut objects = rev_list.stdout.take().expect("piped");
        let mut feed_to = cat.stdin.take().expect("piped");
        let feeder = std::thread::spawn(move || feed(&mut objects, extra, skip, &mut feed_to));
        Ok(ObjectStream {
            rev_list,
            cat,
            feeder,
            answered: 0,
        })
    }

    /// Waits for git; whatever kept an object unread makes the scan
    /// incomplete, with the findings so far kept. When cat-file failed,
    /// the others' failures follow from it and are not repeated.
    fn finish(mut self, read: std::io::Result<()>, out: &mut SourceOutput) -> Ended {
        let cat_failed = !self.cat.wait().is_ok_and(|status| status.success());
        let fed = matches!(self.feeder.join(), Ok(Ok(())));
        let rev_list_ok = self.rev_list.wait().is_ok_and(|status| status.success());
        if cat_failed {
            out.incomplete.push(format!(
                "git cat-file could not read an object, skipped: {}",
                stderr_of(&mut self.cat)
            ));
            return Ended::CatFileFailed;
        }
        if let Err(e) = read {
            out.incomplete
                .push(format!("reading git objects stopped early: {e}"));
        }
        if !fed {
            out.incomplete
                .push("feeding objects to git cat-file stopped early".into());
        }
        if !rev_list_ok {
            out.incomplete.push(format!(
                "git rev-list --objects --all failed: {}",
                stderr_of(&mut self.rev_list)
            ));
        }
        Ended::Complete
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut message = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut message);
    }
    message.trim().to_string()
}

/// Feeds cat-file rev-list's objects, then `extra`, after the first `skip`.
fn feed(
    objects: &mut impl Read,
    extra: Vec<String>,
    skip: u64,
    to: &mut impl std::io::Write,
) -> std::io::Result<()> {
    use std::io::BufRead;
    if skip == 0 {
        std::io::copy(objects, to)?;
    } else {
        let mut skipped = 0;
        for line in BufReader::new(objects).split(b'\n') {
            let line = line?;
            skipped += 1;
            if skipped > skip {
                to.write_all(&line)?;
                to.write_all(b"\n")?;
            }
        }
        let from = (skip.saturating_sub(skipped)) as usize;
        for line in extra.iter().skip(from) {
            to.write_all(line.as_bytes())?;
        }
        return Ok(());
    }
    for line in extra {
        to.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Reads every object from the stream: small blobs go to `threads`
/// workers, big ones are scanned here in bounded chunks so memory stays
/// flat. Results land in `out`.
fn scan_objects(
    stream: &mut ObjectStream,
    detector: &Detector,
    threads: usize,
    out: &Mutex<SourceOutput>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<Vec<Job>>(threads.max(1) * 2);
    let rx = Mutex::new(rx);
    let stdout = stream.cat.stdout.take().expect("piped");
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| work(&rx, detector, out));
        }
        let mut big = BlobScanner::new(detector);
        let mut local = SourceOutput::default();
        let mut stdout = BufReader::with_capacity(1 << 20, stdout);
        let result = read_objects(&mut stdout, &tx, &mut big, &mut local, &mut stream.answered);
        drop(tx);
        local.stats.waived_inline += big.waived_inline as u64;
        absorb(out, local);
        result
    })
}

/// One worker: scans the jobs it receives until the channel closes.
fn work(rx: &Mutex<mpsc::Receiver<Vec<Job>>>, detector: &Detector, out: &Mutex<SourceOutput>) {
    let mut scanner = BlobScanner::new(detector);
    let mut local = SourceOutput::default();
    while let Ok(jobs) = rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
        for job in jobs {
            scan_one(job, &mut scanner, &mut local);
        }
    }
    local.stats.waived_inline += scanner.waived_inline as u64;
    absorb(out, local);
}

/// One small blob (an archive opened), on a worker.
fn scan_one(job: Job, scanner: &mut BlobScanner<'_>, local: &mut SourceOutput) {
    match super::archive::kind_of(&job.path) {
        Some(kind) => {
            let blob = job.blob.clone();
            let tag = move |f: &mut crate::finding::Finding| f.blob = Some(blob.clone());
            super::archive::scan_into(kind, &job.data, &job.path, scanner, local, &tag);
        }
        None => scan_job(scanner, &job.blob, &job.path, &job.data[..], local),
    }
}

/// cat-file's answers until its end: a missing object is recorded as
/// unread and the rest goes on.
fn read_objects(
    stdout: &mut impl std::io::BufRead,
    tx: &mpsc::SyncSender<Vec<Job>>,
    big: &mut BlobScanner<'_>,
    local: &mut SourceOutput,
    answered: &mut u64,
) -> std::io::Result<()> {
    let mut batch = Batch::default();
    let result = read_into(stdout, tx, &mut batch, big, local, answered);
    batch.flush(tx);
    result
}

fn read_into(
    stdout: &mut impl std::io::BufRead,
    tx: &mpsc::SyncSender<Vec<Job>>,
    batch: &mut Batch,
    big: &mut BlobScanner<'_>,
    local: &mut SourceOutput,
    answered: &mut u64,
) -> std::io::Result<()> {
    loop {
        let (id, kind, size) = match read_header(stdout) {
            Ok(Header::Object { id, kind, size }) => (id, kind, size),
            Ok(Header::Missing(sha)) => {
                *answered += 1;
                local
                    .incomplete
                    .push(format!("object {sha} is missing from the repository"));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let (blob, path) = id
            .split_once(' ')
            .map_or((id.clone(), String::new()), |(b, p)| {
                (b.to_string(), p.to_string())
            });
        let mut body = (&mut *stdout).take(size);
        if kind == "blob" && size as usize > CHUNK {
            scan_job(big, &blob, &path, &mut body, local);
        } else if kind == "blob" {
            let mut data = Vec::with_capacity(size as usize);
            body.read_to_end(&mut data)?;
            if !batch.push(Job { blob, path, data }, tx) {
                return Ok(());
            }
        }
        std::io::copy(&mut body, &mut std::io::sink())?;
        let mut nl = [0u8; 1];
        stdout.read_exact(&mut nl)?;
        *answered += 1;
    }
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
    out.count(outcome, &format!("{path} in blob {blob}"));
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
