//! A commit range (`BASE..HEAD`): what a pull request or push adds. Each
//! changed file's new content is scanned and compared with its previous
//! content, so only credentials the range introduces are reported, with
//! the commit that introduced them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::git::{check_repository, output, RawChange};
use super::objects::{scan_blobs, Names, Pool};
use super::SourceOutput;
use crate::detect::Detector;
use crate::finding::{CommitInfo, Finding};
use crate::Error;

pub fn scan_range(
    repo: &Path,
    range: &str,
    commit_messages: bool,
    threads: usize,
    detector: &Detector,
) -> Result<SourceOutput, Error> {
    check_repository(repo)?;
    let fetched = check_range(repo, range)?;
    let changes = introduced_changes(repo, range)?;
    // Waived findings too: a waiver the range adds is reported as such.
    let pool = Pool {
        threads,
        keep_waived: true,
    };
    let new = scan_blobs(repo, &new_blobs(&changes), detector, pool);
    let old = scan_blobs(repo, &replaced_blobs(&changes), detector, pool);
    let mut out = introduced(&changes, new, old);
    out.warnings.extend(fetched);
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

/// The blobs the changes add, named by their paths.
fn new_blobs(changes: &[(CommitInfo, RawChange)]) -> Names {
    Names {
        every_reachable: false,
        listed: changes
            .iter()
            .map(|(_, c)| format!("{} {}\n", c.new_blob, c.path))
            .collect(),
    }
}

/// The blobs the changes replace, each once.
fn replaced_blobs(changes: &[(CommitInfo, RawChange)]) -> Names {
    let mut seen = HashSet::new();
    Names {
        every_reachable: false,
        listed: changes
            .iter()
            .filter(|(_, c)| c.has_old() && seen.insert(c.old_blob.clone()))
            .map(|(_, c)| format!("{} {}\n", c.old_blob, c.path))
            .collect(),
    }
}

/// Pure: what each change introduces, from what its new blob holds (`new`)
/// and what the blob it replaced held (`old`), found or already waived (a
/// waiver there before is not one the change adds). Counts and warnings
/// are the new blobs'; what could not be read of either is the scan's.
fn introduced(
    changes: &[(CommitInfo, RawChange)],
    new: SourceOutput,
    old: SourceOutput,
) -> SourceOutput {
    let mut before: HashMap<String, HashSet<String>> = HashMap::new();
    for f in old.findings.iter().chain(&old.added_inline_waivers) {
        if let Some(blob) = &f.blob {
            before
                .entry(blob.clone())
                .or_default()
                .insert(f.fingerprint().to_string());
        }
    }
    let mut found = by_blob(new.findings);
    let mut waived = by_blob(new.added_inline_waivers);
    let mut out = SourceOutput {
        warnings: new.warnings,
        stats: new.stats,
        skipped: new.skipped,
        incomplete: new.incomplete,
        ..Default::default()
    };
    out.incomplete.extend(old.incomplete);
    let nothing = HashSet::new();
    for (commit, change) in changes {
        let before = match change.has_old() {
            true => before.get(&change.old_blob).unwrap_or(&nothing),
            false => &nothing,
        };
        let new_only = |f: &Finding| !before.contains(f.fingerprint().as_str());
        let tag = |mut f: Finding| {
            f.commit = Some(commit.clone());
            f
        };
        let blob = &change.new_blob;
        let take = |m: &mut HashMap<String, Vec<Finding>>| m.remove(blob).unwrap_or_default();
        out.findings
            .extend(take(&mut found).into_iter().filter(new_only).map(tag));
        out.added_inline_waivers
            .extend(take(&mut waived).into_iter().filter(new_only).map(tag));
    }
    out
}

fn by_blob(findings: Vec<Finding>) -> HashMap<String, Vec<Finding>> {
    let mut map: HashMap<String, Vec<Finding>> = HashMap::new();
    for f in findings {
        map.entry(f.blob.clone().unwrap_or_default())
            .or_default()
            .push(f);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn change(old: &str, new: &str) -> (CommitInfo, RawChange) {
        let line = format!(":100644 100644 {old} {new} M\tconfig.env");
        let commit = CommitInfo {
            commit: format!("commit-{new}"),
            author: None,
            date: None,
        };
        (commit, RawChange::parse(&line).unwrap())
    }

    fn finding(blob: &str, value: &str) -> Finding {
        Finding {
            rule_id: "x-api-key".into(),
            rule_name: "X API key".into(),
            credential: keyguard_credentials::CredentialKey::ApiKey,
            path: "config.env".into(),
            line: 1,
            column: 1,
            blob: Some(blob.into()),
            commit: None,
            value: keyguard_credentials::SecretValue::new(value),
            verification: Default::default(),
            verification_reason: None,
            next_step: None,
        }
    }

    fn output(found: &[(&str, &str)], waived: &[(&str, &str)]) -> SourceOutput {
        SourceOutput {
            findings: found.iter().map(|(b, v)| finding(b, v)).collect(),
            added_inline_waivers: waived.iter().map(|(b, v)| finding(b, v)).collect(),
            ..Default::default()
        }
    }

    fn text(f: &Finding) -> &str {
        std::str::from_utf8(f.value.expose()).unwrap()
    }

    type Case<'a> = (
        &'a str,
        Vec<(CommitInfo, RawChange)>,
        SourceOutput,
        SourceOutput,
        Vec<(&'a str, &'a str)>,
    );

    #[test]
    fn only_what_a_change_adds_is_reported_at_its_commit() {
        let cases: Vec<Case> = vec![
            (
                "a new file: everything in it",
                vec![change(ZERO, "n1")],
                output(&[("n1", "AAAA1111")], &[]),
                output(&[], &[]),
                vec![("commit-n1", "AAAA1111")],
            ),
            (
                "an edit keeps an old value: only the new one",
                vec![change("o1", "n1")],
                output(&[("n1", "AAAA1111"), ("n1", "BBBB2222")], &[]),
                output(&[("o1", "AAAA1111")], &[]),
                vec![("commit-n1", "BBBB2222")],
            ),
            (
                "a value waived in the old version is not the change's",
                vec![change("o1", "n1")],
                output(&[("n1", "AAAA1111")], &[]),
                output(&[], &[("o1", "AAAA1111")]),
                vec![],
            ),
            (
                "another file's old value does not hide this one's",
                vec![change("o1", "n1"), change(ZERO, "n2")],
                output(&[("n1", "CCCC3333"), ("n2", "AAAA1111")], &[]),
                output(&[("o1", "AAAA1111")], &[]),
                vec![("commit-n1", "CCCC3333"), ("commit-n2", "AAAA1111")],
            ),
        ];
        for (what, changes, new, old, want) in cases {
            let out = introduced(&changes, new, old);
            let got: Vec<(&str, &str)> = out
                .findings
                .iter()
                .map(|f| (f.commit.as_ref().unwrap().commit.as_str(), text(f)))
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn waivers_the_range_adds_are_listed_and_unreadable_old_content_is_said() {
        let changes = vec![change("o1", "n1")];
        let mut old = output(&[], &[("o1", "AAAA1111")]);
        old.incomplete.push("o1: unreadable".into());
        let out = introduced(
            &changes,
            output(&[], &[("n1", "AAAA1111"), ("n1", "BBBB2222")]),
            old,
        );
        let waived: Vec<&str> = out.added_inline_waivers.iter().map(text).collect();
        assert_eq!(waived, ["BBBB2222"]);
        assert_eq!(out.incomplete, ["o1: unreadable"]);
    }
}
