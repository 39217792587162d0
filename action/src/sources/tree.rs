//! A working tree, walked in parallel with ripgrep's walker: `.gitignore`
//! and `.keyguardignore` are respected unless `--no-ignore`.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use ignore::{ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};

use super::SourceOutput;
use crate::blob::{BlobScanner, Outcome};
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
    rel.to_string_lossy().replace('\\', "/")
}

pub fn scan_tree(root: &Path, detector: &Detector, opts: TreeOptions) -> SourceOutput {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(!opts.no_ignore)
        .ignore(!opts.no_ignore)
        .git_ignore(!opts.no_ignore)
        .git_exclude(!opts.no_ignore)
        .git_global(!opts.no_ignore)
        .require_git(false)
        .follow_links(opts.follow_links)
        .threads(opts.threads)
        .filter_entry(|e| e.file_name() != ".git");
    if !opts.no_ignore {
        builder.add_custom_ignore_filename(IGNORE_FILE_NAME);
    }
    let out = Mutex::new(SourceOutput::default());
    let mut visitors = Visitors {
        root,
        detector,
        out: &out,
    };
    builder.build_parallel().visit(&mut visitors);
    out.into_inner().unwrap()
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
    match scanner.scan(file, &rel, &mut |f| findings.push(f)) {
        Ok(Outcome::Scanned { bytes }) => {
            out.stats.scanned += 1;
            out.stats.bytes += bytes;
        }
        Ok(Outcome::Binary) => {
            out.stats.binary_skipped += 1;
            out.skipped.push(format!("{rel} (binary)"));
        }
        Err(err) => out.warnings.push(format!("skipped {rel}: {err}")),
    }
}
