//! Git blobs read by `git cat-file --batch` streams (one per worker, up to
//! four, each dealt runs of objects) and scanned on a pool of workers:
//! small blobs travel to the workers in batches, big ones are scanned on
//! their reader in bounded chunks. History feeds the stream
//! every blob `git rev-list` names; a commit range feeds it the blobs the
//! range adds and the versions they replaced. Every finding (and, when
//! asked, every inline-waived one) carries its blob.

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;

use super::git::{git, read_header, Header};
use super::SourceOutput;
use crate::blob::{BlobScanner, CHUNK};
use crate::detect::Detector;
use crate::Error;

/// Which objects a stream reads, each line `<sha> <path>\n` (the path
/// names the blob in what is reported).
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Every blob reachable from a ref or reflog entry, first.
    pub every_reachable: bool,
    /// Then these.
    pub listed: Vec<String>,
}

/// How the workers scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pool {
    pub threads: usize,
    /// Inline-waived findings are kept too, in `added_inline_waivers`
    /// (a range reports the waivers it adds).
    pub keep_waived: bool,
}

pub(crate) struct Job {
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

/// How many unreadable objects a scan steps over before it stops.
const MAX_UNREADABLE: u64 = 16;

/// At most this many `git cat-file` processes read at once. One cat-file
/// inflates on one core and its pipe was the floor of a history scan
/// (measured in docs/benchmarks.md, "History in parallel streams"); more
/// than the cores only adds processes.
const MAX_STREAMS: usize = 4;

/// Objects are dealt to the streams in runs of this many, so neighbours
/// in rev-list's order (often versions of one file, deltas of each other)
/// stay in one cat-file's delta cache.
const RUN: usize = 64;

/// Reads and scans the objects `names` names: one cat-file per worker
/// thread (up to [`MAX_STREAMS`]), each given every n-th run of objects.
/// An object git cannot read ends its cat-file; then the whole scan starts
/// again in one ordered stream that steps over it (see [`scan_in_order`]).
pub(crate) fn scan_blobs(
    repo: &Path,
    names: &Names,
    detector: &Detector,
    pool: Pool,
) -> SourceOutput {
    let streams = pool.threads.clamp(1, MAX_STREAMS);
    let parallel = (streams > 1)
        .then(|| scan_in_parallel(repo, names, detector, pool, streams))
        .flatten();
    parallel.unwrap_or_else(|| scan_in_order(repo, names, detector, pool))
}

/// Every object once, read by `streams` cat-files at once; None when one
/// of them met an object it could not read.
fn scan_in_parallel(
    repo: &Path,
    names: &Names,
    detector: &Detector,
    pool: Pool,
    streams: usize,
) -> Option<SourceOutput> {
    let mut stream = ObjectStream::start(repo, names, 0, streams).ok()?;
    let out = Mutex::new(SourceOutput::default());
    let read = scan_stream(&mut stream, detector, pool, &out);
    let mut local = SourceOutput::default();
    if stream.finish(read, &mut local) != Ended::Complete {
        return None;
    }
    let mut out = out.into_inner().unwrap_or_else(|p| p.into_inner());
    out.absorb(local);
    Some(out)
}

/// One ordered stream. An object git cannot read (a corrupt one) ends
/// cat-file: it is recorded as unread (the scan is incomplete) and a new
/// stream goes on after it, so one bad object costs only itself.
fn scan_in_order(repo: &Path, names: &Names, detector: &Detector, pool: Pool) -> SourceOutput {
    let out = Mutex::new(SourceOutput::default());
    let mut skip = 0;
    let mut local = SourceOutput::default();
    for pass in 0..=MAX_UNREADABLE {
        let mut stream = match ObjectStream::start(repo, names, skip, 1) {
            Ok(stream) => stream,
            Err(e) => {
                local.incomplete.push(format!("reading git objects: {e}"));
                break;
            }
        };
        let read = scan_stream(&mut stream, detector, pool, &out);
        let answered = stream.cats[0].answered;
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

/// The objects [`Names`] names, read by `git cat-file --batch`es: first
/// what `git rev-list --objects --all --reflog` names when asked (blobs
/// only, missing ones listed rather than fatal), then the listed ones.
struct ObjectStream {
    rev_list: Option<Child>,
    cats: Vec<Cat>,
    feeder: std::thread::JoinHandle<std::io::Result<()>>,
}

/// One `git cat-file --batch` of a stream.
struct Cat {
    child: Child,
    /// Objects it answered in full.
    answered: u64,
}

impl ObjectStream {
    /// Starts `cats` cat-files after the first `skip` objects (read, or
    /// unreadable, by an earlier stream).
    fn start(repo: &Path, names: &Names, skip: u64, cats: usize) -> Result<Self, Error> {
        let mut rev_list = match names.every_reachable {
            true => Some(every_reachable_blob(repo)?),
            false => None,
        };
        let mut cats = (0..cats)
            .map(|_| cat_file(repo).map(|child| Cat { child, answered: 0 }))
            .collect::<Result<Vec<_>, _>>()?;
        let objects = rev_list.as_mut().map(|r| r.stdout.take().expect("piped"));
        let feed_to = cats
            .iter_mut()
            .map(|cat| cat.child.stdin.take().expect("piped"))
            .collect();
        let listed = names.listed.clone();
        let feeder = std::thread::spawn(move || feed(objects, listed, skip, feed_to));
        Ok(ObjectStream {
            rev_list,
            cats,
            feeder,
        })
    }

    /// Waits for git; whatever kept an object unread makes the scan
    /// incomplete, with the findings so far kept. When a cat-file failed,
    /// the others' failures follow from it and are not repeated.
    fn finish(mut self, read: std::io::Result<()>, out: &mut SourceOutput) -> Ended {
        let failed: Vec<String> = self
            .cats
            .iter_mut()
            .filter_map(|cat| {
                let ok = cat.child.wait().is_ok_and(|status| status.success());
                (!ok).then(|| stderr_of(&mut cat.child))
            })
            .collect();
        let fed = matches!(self.feeder.join(), Ok(Ok(())));
        let rev_list_ok = self
            .rev_list
            .as_mut()
            .is_none_or(|r| r.wait().is_ok_and(|status| status.success()));
        if !failed.is_empty() {
            out.incomplete.push(format!(
                "git cat-file could not read an object, skipped: {}",
                failed.join("; ")
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
                self.rev_list.as_mut().map(stderr_of).unwrap_or_default()
            ));
        }
        Ended::Complete
    }
}

fn cat_file(repo: &Path) -> Result<Child, Error> {
    git(repo)
        .args([
            "cat-file",
            "--batch=%(objectname) %(objecttype) %(objectsize) %(rest)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Git {
            command: "git cat-file".into(),
            message: e.to_string(),
        })
}

fn stderr_of(child: &mut Child) -> String {
    let mut message = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut message);
    }
    message.trim().to_string()
}

/// `git rev-list` naming every reachable blob (and missing objects).
fn every_reachable_blob(repo: &Path) -> Result<Child, Error> {
    git(repo)
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
        .map_err(|e| Error::Git {
            command: "git rev-list".into(),
            message: e.to_string(),
        })
}

/// Feeds the cat-files rev-list's objects (if any), then `listed`, after
/// the first `skip`.
fn feed<W: Write>(
    objects: Option<impl Read>,
    listed: Vec<String>,
    skip: u64,
    to: Vec<W>,
) -> std::io::Result<()> {
    use std::io::BufRead;
    let mut to = Dealer::new(to);
    if let (Some(single), 0) = (to.single(), skip) {
        if let Some(mut objects) = objects {
            std::io::copy(&mut objects, single)?;
        }
        listed
            .iter()
            .try_for_each(|l| single.write_all(l.as_bytes()))?;
        return to.finish();
    }
    let reachable = objects.into_iter().flat_map(|o| {
        BufReader::new(o).split(b'\n').map(|line| {
            line.map(|mut line| {
                line.push(b'\n');
                line
            })
        })
    });
    let lines = reachable.chain(listed.into_iter().map(|l| Ok(l.into_bytes())));
    for line in lines.skip(skip as usize) {
        to.deal(&line?)?;
    }
    to.finish()
}

/// Deals lines to writers in runs of [`RUN`], round the table.
struct Dealer<W: Write> {
    to: Vec<std::io::BufWriter<W>>,
    next: usize,
    in_run: usize,
}

impl<W: Write> Dealer<W> {
    fn new(to: Vec<W>) -> Self {
        let to = to.into_iter().map(std::io::BufWriter::new).collect();
        Dealer {
            to,
            next: 0,
            in_run: 0,
        }
    }

    /// The only writer, when there is one.
    fn single(&mut self) -> Option<&mut std::io::BufWriter<W>> {
        match self.to.as_mut_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    fn deal(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.to[self.next].write_all(line)?;
        self.in_run += 1;
        if self.in_run == RUN {
            // A run waiting in a buffer would leave its cat-file idle.
            self.to[self.next].flush()?;
            self.next = (self.next + 1) % self.to.len();
            self.in_run = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.to.iter_mut().try_for_each(|w| w.flush())
    }
}

/// Reads every object from the stream's cat-files, each on its own
/// thread: small blobs go to `threads` workers, big ones are scanned by
/// the reader in bounded chunks so memory stays flat. Results land in
/// `out`; the first read error is returned.
fn scan_stream(
    stream: &mut ObjectStream,
    detector: &Detector,
    pool: Pool,
    out: &Mutex<SourceOutput>,
) -> std::io::Result<()> {
    let threads = pool.threads.max(1);
    let (tx, rx) = mpsc::sync_channel::<Vec<Job>>(threads * 2);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| work(&rx, detector, pool, out));
        }
        let readers: Vec<_> = stream
            .cats
            .iter_mut()
            .map(|cat| {
                let tx = tx.clone();
                s.spawn(move || read_cat(cat, &tx, detector, pool, out))
            })
            .collect();
        drop(tx);
        // Every reader is joined before the first error is returned.
        let results: Vec<_> = readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a reader panicked")))
            })
            .collect();
        results.into_iter().collect()
    })
}

/// One cat-file's answers, read to their end.
fn read_cat(
    cat: &mut Cat,
    tx: &mpsc::SyncSender<Vec<Job>>,
    detector: &Detector,
    pool: Pool,
    out: &Mutex<SourceOutput>,
) -> std::io::Result<()> {
    let stdout = cat.child.stdout.take().expect("piped");
    let mut big = BlobScanner::new(detector);
    big.keep_waived = pool.keep_waived;
    let mut local = SourceOutput::default();
    let mut stdout = BufReader::with_capacity(1 << 20, stdout);
    let result = read_objects(&mut stdout, tx, &mut big, &mut local, &mut cat.answered);
    local.stats.waived_inline += big.waived_inline as u64;
    absorb(out, local);
    result
}

/// One worker: scans the jobs it receives until the channel closes.
fn work(
    rx: &Mutex<mpsc::Receiver<Vec<Job>>>,
    detector: &Detector,
    pool: Pool,
    out: &Mutex<SourceOutput>,
) {
    let mut scanner = BlobScanner::new(detector);
    scanner.keep_waived = pool.keep_waived;
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
    keep_waived(scanner, &job.blob, local);
}

/// The inline-waived findings of the blob just scanned, tagged with it.
fn keep_waived(scanner: &mut BlobScanner<'_>, blob: &str, local: &mut SourceOutput) {
    for mut f in scanner.waived.drain(..) {
        f.blob = Some(blob.to_string());
        local.added_inline_waivers.push(f);
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
            keep_waived(big, &blob, local);
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

fn absorb(out: &Mutex<SourceOutput>, local: SourceOutput) {
    out.lock().unwrap_or_else(|p| p.into_inner()).absorb(local);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each cat-file is fed: runs of [`RUN`] lines round the table,
    /// after the skipped ones, rev-list's objects before the listed.
    #[test]
    fn objects_are_dealt_in_runs_round_the_table() {
        let reachable: String = (0..200).map(|i| format!("{i}\n")).collect();
        let all: Vec<String> = (0..200)
            .map(|i| i.to_string())
            .chain(["listed".into()])
            .collect();
        for (writers, skip, first_lines) in [
            (1, 0, vec!["0"]),
            (1, 5, vec!["5"]),
            (2, 0, vec!["0", "64"]),
            (3, 0, vec!["0", "64", "128"]),
            (2, 70, vec!["70", "134"]),
            (2, 200, vec!["listed"]),
        ] {
            let mut to = vec![Vec::new(); writers];
            let listed = vec!["listed\n".to_string()];
            feed(
                Some(reachable.as_bytes()),
                listed,
                skip,
                to.iter_mut().collect(),
            )
            .unwrap();
            let fed: Vec<Vec<&str>> = to
                .iter()
                .map(|w| std::str::from_utf8(w).unwrap().lines().collect())
                .collect();
            let firsts: Vec<&str> = fed.iter().filter_map(|w| w.first().copied()).collect();
            assert_eq!(firsts, first_lines, "{writers} writers, skip {skip}");
            for (i, got) in fed.iter().enumerate() {
                let runs = all[skip as usize..].chunks(RUN).skip(i).step_by(writers);
                let want: Vec<&str> = runs.flatten().map(String::as_str).collect();
                assert_eq!(got, &want, "{writers} writers, skip {skip}, writer {i}");
            }
        }
    }
}
