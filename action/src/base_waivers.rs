//! Range mode's waivers come from the base commit: a pull request that adds
//! a credential and, in the same change, its fingerprint to the ignore file
//! (or a baseline kept in the repository) must still fail. What the change
//! adds to those files is listed for reviewers instead.

use std::path::{Path, PathBuf};

use crate::sources::git::{output, range_ends};
use crate::waivers::{
    added_ignore_lines, AddedWaiver, Baseline, IgnoreFile, WaiverFiles, IGNORE_FILE_NAME,
};
use crate::Error;

/// A file's text at a commit; `None` when it does not exist there.
fn at_commit(repo: &Path, commit: &str, rel: &str) -> Option<String> {
    output(repo, &["show", &format!("{commit}:{rel}")]).ok()
}

/// `path` relative to the repository's top level, when it lies inside.
fn in_repository(repo: &Path, path: &Path) -> Result<Option<String>, Error> {
    let top = PathBuf::from(output(repo, &["rev-parse", "--show-toplevel"])?.trim());
    let top = top.canonicalize().unwrap_or(top);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| Error::Io {
                what: "reading the working directory".into(),
                source,
            })?
            .join(path)
    };
    let absolute = absolute
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.join(absolute.file_name().unwrap_or_default()))
        .unwrap_or(absolute);
    Ok(absolute
        .strip_prefix(&top)
        .ok()
        .map(|r| r.to_string_lossy().replace('\\', "/")))
}

/// The ignore file and baseline as of the base commit, and what the change
/// adds to them.
pub fn load(
    repo: &Path,
    range: &str,
    opts: &WaiverFiles,
) -> Result<(IgnoreFile, Option<Baseline>, Vec<AddedWaiver>), Error> {
    let (base, head) = range_ends(range);
    let mut added = Vec::new();
    let ignore_rel = match &opts.ignore_file {
        Some(file) => in_repository(repo, file)?,
        None => Some(IGNORE_FILE_NAME.to_string()),
    };
    let ignore =
        match (&ignore_rel, &opts.ignore_file) {
            _ if opts.no_ignore => IgnoreFile::default(),
            (Some(rel), _) => {
                let before = at_commit(repo, &base, rel).unwrap_or_default();
                let after = at_commit(repo, &head, rel).unwrap_or_default();
                added.extend(added_ignore_lines(&before, &after).into_iter().map(
                    |(line, text)| AddedWaiver {
                        path: rel.clone(),
                        line,
                        what: format!("ignore-file line `{text}`"),
                    },
                ));
                IgnoreFile::parse(repo, &before, Path::new(rel))?
            }
            // Outside the repository: the change cannot have edited it.
            (None, Some(file)) => IgnoreFile::load(repo, file)?,
            (None, None) => IgnoreFile::default(),
        };
    let baseline = match &opts.baseline {
        None => None,
        Some(file) => match in_repository(repo, file)? {
            Some(rel) => match at_commit(repo, &base, &rel) {
                Some(text) => Some(Baseline::parse(&text, file)?),
                None => {
                    added.push(AddedWaiver {
                        path: rel,
                        line: 0,
                        what: "baseline added by this change (not applied)".into(),
                    });
                    None
                }
            },
            None => Some(Baseline::load(file)?),
        },
    };
    Ok((ignore, baseline, added))
}
