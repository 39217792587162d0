//! Talking to git: the git CLI, the same one a runner or developer has, in
//! batch mode (`cat-file --batch`) so every blob costs no process.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::finding::CommitInfo;
use crate::Error;

pub(crate) fn git(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo);
    // Git's own quoting (octal escapes for bytes past ASCII) keeps its
    // text output ASCII; `RawChange::parse` unquotes paths to their bytes.
    cmd.args(["-c", "core.quotePath=true"]);
    cmd
}

/// Runs git and returns stdout, or an error naming the command and git's
/// own message.
pub(crate) fn output(repo: &Path, args: &[&str]) -> Result<String, Error> {
    let out = git(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Git {
            command: format!("git {}", args.join(" ")),
            message: format!("could not run git ({e}); is git installed?"),
        })?;
    if !out.status.success() {
        return Err(Error::Git {
            command: format!("git {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails early, with git's message, when `repo` is not a readable repository.
pub(crate) fn check_repository(repo: &Path) -> Result<(), Error> {
    output(repo, &["rev-parse", "--git-dir"])?;
    Ok(())
}

/// A `--batch` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// `<sha> <type> <size> [rest]`: `id` is the sha and the rest.
    Object { id: String, kind: String, size: u64 },
    /// `<sha> missing` (a `?` that `rev-list --missing=print` put in
    /// front of the name is dropped).
    Missing(String),
}

/// Reads a `--batch` header.
pub(crate) fn read_header(r: &mut impl BufRead) -> std::io::Result<Header> {
    // Bytes, not a String: the path after the size is whatever the
    // repository holds, UTF-8 or not.
    let mut raw = Vec::new();
    if r.read_until(b'\n', &mut raw)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "git cat-file ended early",
        ));
    }
    let line = crate::path_text::from_bytes(raw.strip_suffix(b"\n").unwrap_or(&raw));
    let line = line.as_str();
    let mut parts = line.splitn(4, ' ');
    let sha = parts.next().unwrap_or_default();
    let kind = parts.next().unwrap_or_default();
    if kind == "missing" || kind.is_empty() {
        return Ok(Header::Missing(sha.trim_start_matches('?').to_string()));
    }
    let size: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad cat-file header {line:?}"),
        )
    })?;
    let rest = parts.next().unwrap_or_default();
    let id = if rest.is_empty() {
        sha.to_string()
    } else {
        format!("{sha} {rest}")
    };
    Ok(Header::Object {
        id,
        kind: kind.to_string(),
        size,
    })
}

/// For each of `blobs`, the oldest commit (over every ref) that brought it
/// and the path it had there. One walk of the history whatever the number
/// of blobs (a walk per blob made attributing hundreds of leaking commits
/// cost more than the scan), stopped once every blob is placed.
pub(crate) fn first_appearances(
    repo: &Path,
    blobs: &std::collections::HashSet<String>,
) -> Result<std::collections::HashMap<String, (CommitInfo, String)>, Error> {
    let mut found = std::collections::HashMap::new();
    if blobs.is_empty() {
        return Ok(found);
    }
    for_each_raw_change(repo, &["--all", "--reverse"], |commit, raw| {
        if blobs.contains(&raw.new_blob) && !found.contains_key(&raw.new_blob) {
            found.insert(raw.new_blob.clone(), (commit.clone(), raw.path));
        }
        match found.len() == blobs.len() {
            true => std::ops::ControlFlow::Break(()),
            false => std::ops::ControlFlow::Continue(()),
        }
    })?;
    Ok(found)
}

/// The `git log --raw` arguments every reading of changes uses.
const RAW_LOG: [&str; 5] = [
    "log",
    "--no-renames",
    "--raw",
    "--no-abbrev",
    "--format=commit %H%x09%an%x09%aI",
];

/// Every change `git log --raw` lists for `args` (options and revisions),
/// each with its commit, in the log's order.
pub(crate) fn raw_changes(
    repo: &Path,
    args: &[&str],
) -> Result<Vec<(CommitInfo, RawChange)>, Error> {
    let mut changes = Vec::new();
    for_each_raw_change(repo, args, |commit, raw| {
        changes.push((commit.clone(), raw));
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(changes)
}

/// Streams `git log --raw` for `args` to `visit`, change by change, without
/// holding the log (a long history's log is larger than its pack); git is
/// stopped when `visit` breaks.
pub(crate) fn for_each_raw_change(
    repo: &Path,
    args: &[&str],
    mut visit: impl FnMut(&CommitInfo, RawChange) -> std::ops::ControlFlow<()>,
) -> Result<(), Error> {
    let command = format!("git {} {}", RAW_LOG.join(" "), args.join(" "));
    let failed = |message: String| Error::Git {
        command: command.clone(),
        message,
    };
    let mut child = git(repo)
        .args(RAW_LOG)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("could not run git ({e}); is git installed?")))?;
    let stdout = child.stdout.take().expect("piped");
    // Drained beside stdout: git blocked on a full stderr pipe (warnings
    // about broken refs) would otherwise wait for us forever.
    let mut stderr = child.stderr.take().expect("piped");
    let warnings = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut commit: Option<CommitInfo> = None;
    let mut stopped = false;
    let mut unread = None;
    for line in BufReader::new(stdout).split(b'\n') {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                unread = Some(e.to_string());
                stopped = true;
                break;
            }
        };
        let line = String::from_utf8_lossy(&line);
        if let Some(rest) = line.strip_prefix("commit ") {
            commit = Some(commit_info(rest));
        } else if let (Some(raw), Some(c)) = (RawChange::parse(&line), &commit) {
            if visit(c, raw).is_break() {
                stopped = true;
                break;
            }
        }
    }
    let finished = finish_log(child, stopped, warnings);
    match unread {
        Some(e) => Err(failed(e)),
        None => finished.map_err(failed),
    }
}

/// `%H%x09%an%x09%aI` of a `commit ` line.
fn commit_info(fields: &str) -> CommitInfo {
    let mut f = fields.split('\t');
    CommitInfo {
        commit: f.next().unwrap_or_default().to_string(),
        author: f.next().map(str::to_string),
        date: f.next().map(str::to_string),
    }
}

/// Waits for git log; one stopped on purpose is killed, not a failure.
fn finish_log(
    mut child: Child,
    stopped: bool,
    stderr: std::thread::JoinHandle<String>,
) -> Result<(), String> {
    if stopped {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(());
    }
    let status = child.wait();
    let message = stderr.join().unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err(message.trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// One line of `git log --raw --no-abbrev`.
#[derive(Debug, Clone)]
pub(crate) struct RawChange {
    pub old_blob: String,
    pub new_blob: String,
    pub new_mode: String,
    pub status: char,
    pub path: String,
}

const ZERO: &str = "0000000000000000000000000000000000000000";

impl RawChange {
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let line = line.strip_prefix(':')?;
        let (meta, path) = line.split_once('\t')?;
        let mut f = meta.split(' ');
        let _old_mode = f.next()?;
        let new_mode = f.next()?.to_string();
        let old_blob = f.next()?.to_string();
        let new_blob = f.next()?.to_string();
        let status = f.next()?.chars().next()?;
        Some(RawChange {
            old_blob,
            new_blob,
            new_mode,
            status,
            path: crate::path_text::from_bytes(&crate::path_text::unquote_git(path)),
        })
    }

    /// A change that brings new file content (not a deletion, not a
    /// submodule).
    pub(crate) fn adds_content(&self) -> bool {
        self.status != 'D' && self.new_blob != ZERO && self.new_mode != "160000"
    }

    pub(crate) fn has_old(&self) -> bool {
        self.old_blob != ZERO
    }
}

/// The ends of `BASE..HEAD` (or `BASE...HEAD`); HEAD when omitted.
pub fn range_ends(range: &str) -> (String, String) {
    let (base, head) = range.split_once("..").unwrap_or((range, ""));
    let head = head.trim_start_matches('.');
    let or_head = |s: &str| {
        if s.is_empty() {
            "HEAD".to_string()
        } else {
            s.to_string()
        }
    };
    (or_head(base), or_head(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_ends_default_to_head() {
        let cases = [
            ("main..HEAD", ("main", "HEAD")),
            ("a...b", ("a", "b")),
            ("abc..", ("abc", "HEAD")),
        ];
        for (range, (base, head)) in cases {
            assert_eq!(
                range_ends(range),
                (base.to_string(), head.to_string()),
                "{range}"
            );
        }
    }
}
