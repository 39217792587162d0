//! Shallow clones (the `actions/checkout` default) hold only the newest
//! commits. A range scan over truncated history would miss what the
//! missing commits added (a token added and removed inside a pull request)
//! and report a clean result; so a range is first made complete by
//! fetching the base and deepening until no commit of the range lies on
//! the shallow boundary, and fails loudly when that is impossible.

use std::collections::HashSet;
use std::path::Path;

use super::git::output;
use crate::Error;

/// Deepening steps tried before fetching the whole history.
const DEEPEN_STEPS: [u32; 4] = [50, 200, 1000, 5000];

pub fn is_shallow(repo: &Path) -> bool {
    output(repo, &["rev-parse", "--is-shallow-repository"]).is_ok_and(|o| o.trim() == "true")
}

/// The commits where this clone's history is cut off.
fn boundary(repo: &Path) -> HashSet<String> {
    output(repo, &["rev-parse", "--git-path", "shallow"])
        .ok()
        .and_then(|p| std::fs::read_to_string(repo.join(p.trim())).ok())
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn is_commit(repo: &Path, rev: &str) -> bool {
    output(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .is_ok()
}

/// Pure: the range is complete when both ends are here and no commit of
/// the range (other than the base side) is cut off from its parents.
pub fn is_complete(in_range: &[String], boundary: &HashSet<String>, ends_present: bool) -> bool {
    ends_present && !in_range.iter().any(|c| boundary.contains(c))
}

fn complete(repo: &Path, base: &str, head: &str) -> bool {
    if !(is_commit(repo, base) && is_commit(repo, head)) {
        return false;
    }
    let cut = boundary(repo);
    let commits: Vec<String> = output(repo, &["rev-list", &format!("{base}..{head}")])
        .map(|o| o.lines().map(str::to_string).collect())
        .unwrap_or_default();
    is_complete(&commits, &cut, true)
}

fn fetch(repo: &Path, args: &[&str]) -> bool {
    let mut all = vec!["fetch", "--quiet", "--no-tags"];
    all.extend_from_slice(args);
    output(repo, &all).is_ok()
}

/// Makes `base..head` complete in a shallow clone by fetching from
/// `origin`; an error when the range stays incomplete. Returns a note
/// for the report when it had to fetch.
pub fn ensure_range(repo: &Path, base: &str, head: &str) -> Result<Option<String>, Error> {
    if !is_shallow(repo) || complete(repo, base, head) {
        return Ok(None);
    }
    let has_origin = output(repo, &["remote"]).is_ok_and(|r| r.lines().any(|l| l == "origin"));
    if has_origin {
        for end in [base, head] {
            if !is_commit(repo, end) {
                fetch(repo, &["--depth=1", "origin", end]);
            }
        }
        for depth in DEEPEN_STEPS {
            if complete(repo, base, head) {
                break;
            }
            let deepen = format!("--deepen={depth}");
            fetch(repo, &[&deepen, "origin", head]);
        }
        if !complete(repo, base, head) {
            fetch(repo, &["--unshallow", "origin"]);
        }
        if complete(repo, base, head) {
            return Ok(Some(format!(
                "shallow clone: fetched the history between {base} and {head} from origin before scanning"
            )));
        }
    }
    Err(Error::Usage(format!(
        "shallow clone: the commits between {base} and {head} are not all in this repository{}, so a scan could miss what they added; use actions/checkout with `fetch-depth: 0`",
        if has_origin { " and could not be fetched from origin" } else { " (no `origin` remote to fetch them from)" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_cut_by_the_shallow_boundary_is_incomplete() {
        let set = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<HashSet<_>>();
        let list = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases = [
            ("full history", list(&["c", "b"]), set(&[]), true, true),
            (
                "cut inside the range",
                list(&["c", "b"]),
                set(&["b"]),
                true,
                false,
            ),
            (
                "cut below the base only",
                list(&["c", "b"]),
                set(&["a"]),
                true,
                true,
            ),
            ("an end is missing", list(&[]), set(&[]), false, false),
        ];
        for (what, in_range, cut, ends, want) in cases {
            assert_eq!(is_complete(&in_range, &cut, ends), want, "{what}");
        }
    }
}
