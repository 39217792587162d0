//! Shallow clones: a range scan never reports a clean result over history
//! it does not have; it fetches what it needs or fails loudly.

use crate::support::*;

/// An origin whose `pr` branch adds a token and removes it again, and a
/// depth-1 clone of that branch (as actions/checkout makes); returns
/// (origin, clone directory, base).
fn shallow_pull_request() -> (Repo, tempfile::TempDir, String) {
    let origin = Repo::new();
    origin.write("README.md", "bot\n");
    let base = origin.commit("base");
    origin.git(&["checkout", "-q", "-b", "pr"]);
    origin.write(".env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    origin.commit("add a token");
    origin.write(".env", "TWITTER_BEARER_TOKEN=${TWITTER_BEARER_TOKEN}\n");
    origin.commit("remove it again");
    origin.write("README.md", "bot, v2\n");
    origin.commit("unrelated");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.path().display());
    let status = std::process::Command::new("git")
        .args([
            "clone", "-q", "--depth", "1", "--branch", "pr", &url, "clone",
        ])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    (origin, dir, base)
}

#[test]
fn a_range_in_a_shallow_clone_is_fetched_before_it_is_scanned() {
    let (_origin, dir, base) = shallow_pull_request();
    let clone = dir.path().join("clone");
    let range = format!("{base}..HEAD");
    let out = keyguard(
        &["scan", "--format", "json", "--range", &range, "."],
        &clone,
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    assert_eq!(finding_paths(&report), vec![".env:x-bearer-token"]);
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("shallow clone"),
        "{report}"
    );
}

#[test]
fn a_range_that_cannot_be_completed_fails_loudly() {
    let (_origin, dir, base) = shallow_pull_request();
    let clone = dir.path().join("clone");
    // The base alone, as the tool's old hint suggested, then no remote.
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&clone)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["fetch", "-q", "--depth=1", "origin", &base]);
    git(&["remote", "remove", "origin"]);
    let out = keyguard(&["scan", "--range", &format!("{base}..HEAD"), "."], &clone);
    assert_eq!(
        out.code, 2,
        "never a clean result: {}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains("shallow clone"), "{}", out.stderr);
    assert!(out.stderr.contains("fetch-depth: 0"), "{}", out.stderr);

    let history = keyguard(&["scan", "--history", "--format", "json", "."], &clone);
    assert!(
        json(&history)["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("shallow clone")),
        "{}",
        history.stdout
    );
}
