//! A working tree, walked in parallel with ripgrep's walker: `.gitignore`
//! and the `.keyguardignore` at the scanned root are respected unless
//! `--no-ignore`. Nothing else hides a file: a `.keyguardignore` deeper
//! down is reported, not read (after a merge it would silently skip its
//! directory in every later scan, and a pull request's scan reads waivers
//! at the base), ripgrep's `.ignore` files are not read, and in a git
//! repository files that are tracked though a `.gitignore` matches them
//! are scanned too.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use ignore::{ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};

use super::SourceOutput;
use crate::blob::BlobScanner;
use crate::detect::Detector;
use crate::waivers::IGNORE_FILE_NAME;

#[derive(Debug, Clone, Copy)]
pub struct TreeOptions {
    pub no_ignore: bool,
    pub follow_links: bool,
    pub threads: usize,
}

/// Path of `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        path
    } else {
        rel
    };
    let text = crate::path_text::from_bytes(rel.as_os_str().as_encoded_bytes());
    if cfg!(windows) {
        text.replace('\\', "/")
    } else {
        text
    }
}

pub fn scan_tree(root: &Path, detector: &Detector, opts: TreeOptions) -> SourceOutput {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(!opts.no_ignore)
        .ignore(false)
        .git_ignore(!opts.no_ignore)
        .git_exclude(!opts.no_ignore)
        .git_global(!opts.no_ignore)
        .require_git(false)
        .follow_links(opts.follow_links)
        .threads(opts.threads)
        .filter_entry(|e| e.file_name() != ".git");
    let root_ignore = root.join(IGNORE_FILE_NAME);
    if !opts.no_ignore && root_ignore.is_file() {
        let refused = crate::waivers::unreadable_ignore_file(&root_ignore);
        // Neither git's message nor the file's text: a line of a host
        // file must not reach a report.
        let failed = refused.or_else(|| {
            builder
                .add_ignore(&root_ignore)
                .map(|_| "a line is no valid pattern".to_string())
        });
        if let Some(why) = failed {
            return SourceOutput {
                incomplete: vec![format!("{IGNORE_FILE_NAME}: {why}")],
                ..SourceOutput::default()
            };
        }
    }
    let out = Mutex::new(SourceOutput::default());
    let mut visitors = Visitors {
        root,
        detector,
        out: &out,
    };
    builder.build_parallel().visit(&mut visitors);
    let mut out = out.into_inner().unwrap_or_else(|p| p.into_inner());
    if !opts.no_ignore {
        scan_tracked_but_ignored(root, detector, opts.follow_links, &mut out);
    }
    out
}

/// Files git tracks although a `.gitignore` matches them (added with
/// `git add -f`): the walker skips them, but they are in the repository.
fn scan_tracked_but_ignored(
    root: &Path,
    detector: &Detector,
    follow_links: bool,
    out: &mut SourceOutput,
) {
    if !root.is_dir() {
        return;
    }
    // Quoted (core.quotePath), not -z: the text stays ASCII, and each
    // name is unquoted to its exact bytes, UTF-8 or not.
    let args = ["ls-files", "--cached", "--ignored", "--exclude-standard"];
    let Ok(listed) = super::git::output(root, &args) else {
        return; // not a git work tree
    };
    let mut scanner = BlobScanner::new(detector);
    let mut local = SourceOutput::default();
    for quoted in listed.lines().filter(|r| !r.is_empty()) {
        let path = root.join(crate::path_text::to_path(&crate::path_text::unquote_git(
            quoted,
        )));
        // A tracked symbolic link points outside the tree: followed only
        // when asked, as the walker does.
        let regular = match follow_links {
            true => path.is_file(),
            false => std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()),
        };
        if regular && !is_nested_ignore_file(root, &path) {
            scan_file(root, &path, &mut scanner, &mut local);
        }
    }
    merge(out, &mut local, &mut scanner);
}

/// A `.keyguardignore` below the scanned root.
fn is_nested_ignore_file(root: &Path, path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == IGNORE_FILE_NAME) && path.parent() != Some(root)
}

struct Visitors<'a> {
    root: &'a Path,
    detector: &'a Detector,
    out: &'a Mutex<SourceOutput>,
}

impl<'s> ParallelVisitorBuilder<'s> for Visitors<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Visitor {
            root: self.root,
            out: self.out,
            scanner: BlobScanner::new(self.detector),
            local: SourceOutput::default(),
        })
    }
}

/// One walker thread's state; results are merged when it is dropped.
struct Visitor<'a> {
    root: &'a Path,
    out: &'a Mutex<SourceOutput>,
    scanner: BlobScanner<'a>,
    local: SourceOutput,
}

impl ParallelVisitor for Visitor<'_> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> WalkState {
        match entry {
            Err(err) => self.local.warnings.push(format!("skipped: {err}")),
            Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => {
                if is_nested_ignore_file(self.root, entry.path()) {
                    self.local.warnings.push(format!(
                        "{} is not read: only the {IGNORE_FILE_NAME} at the scanned root waives findings",
                        relative(self.root, entry.path())
                    ));
                }
                scan_file(self.root, entry.path(), &mut self.scanner, &mut self.local);
            }
            Ok(_) => {}
        }
        WalkState::Continue
    }
}

impl Drop for Visitor<'_> {
    fn drop(&mut self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        merge(&mut out, &mut self.local, &mut self.scanner);
    }
}

fn scan_archive_file(
    kind: super::archive::Kind,
    path: &Path,
    rel: &str,
    scanner: &mut BlobScanner<'_>,
    out: &mut SourceOutput,
) {
    let too_big = std::fs::metadata(path).is_ok_and(|m| m.len() > super::archive::MAX_ARCHIVE);
    if too_big {
        out.incomplete.push(format!(
            "{rel}: an archive over {} MiB is not opened",
            super::archive::MAX_ARCHIVE >> 20
        ));
        return;
    }
    match std::fs::read(path) {
        Ok(data) => super::archive::scan_into(kind, &data, rel, scanner, out, &|_| {}),
        Err(err) => out.warnings.push(format!("skipped {rel}: {err}")),
    }
}

fn merge(into: &mut SourceOutput, local: &mut SourceOutput, scanner: &mut BlobScanner<'_>) {
    local.stats.waived_inline += std::mem::take(&mut scanner.waived_inline) as u64;
    into.absorb(std::mem::take(local));
}

fn scan_file(root: &Path, path: &Path, scanner: &mut BlobScanner<'_>, out: &mut SourceOutput) {
    let rel = relative(root, path);
    if let Some(kind) = super::archive::kind_of(&rel) {
        return scan_archive_file(kind, path, &rel, scanner, out);
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(err) => {
            out.warnings.push(format!("skipped {rel}: {err}"));
            return;
        }
    };
    let findings = &mut out.findings;
    let outcome = scanner.scan(file, &rel, &mut |f| findings.push(f));
    out.count(outcome, &rel);
}
