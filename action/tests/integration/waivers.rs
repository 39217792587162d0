//! A change cannot waive its own leak: in range (pull request) mode the
//! ignore file and an in-repository baseline count as of the base commit,
//! and every waiver the change adds is shown to reviewers.

use crate::support::*;

/// A repository whose `pr` branch adds a bearer token in `.env`, with the
/// extra files `add` writes; returns (repo, base, head).
fn pull_request(add: impl Fn(&Repo)) -> (Repo, String, String) {
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "pr"]);
    add(&repo);
    let head = repo.commit("add a token and waive it");
    (repo, base, head)
}

fn fingerprint_of_bearer() -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("TWITTER_BEARER_TOKEN={BEARER}\n"),
    )
    .unwrap();
    let out = keyguard(&["scan", "--format", "json", "."], dir.path());
    json(&out)["findings"][0]["fingerprint"]
        .as_str()
        .expect("the token is found")
        .to_string()
}

#[test]
fn an_ignore_line_added_by_the_change_does_not_waive_its_leak() {
    let fingerprint = fingerprint_of_bearer();
    let (repo, base, head) = pull_request(|r| {
        r.write(".env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
        r.write(
            ".keyguardignore",
            &format!("# harmless test value\n{fingerprint}\n"),
        );
    });
    let range = format!("{base}..{head}");
    let out = keyguard(
        &["scan", "--format", "json", "--range", &range, "."],
        repo.path(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    assert_eq!(finding_paths(&report), vec![".env:x-bearer-token"]);
    let added = &report["addedWaivers"];
    assert_eq!(added.as_array().unwrap().len(), 1, "{added}");
    assert_eq!(added[0]["path"], ".keyguardignore");
    assert_eq!(added[0]["line"], 2);

    // Once merged (the line is in the base), it waives as intended.
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "--ff-only", "pr"]);
    repo.write("notes.md", "later\n");
    let later = repo.commit("a later change");
    let out = keyguard(
        &[
            "scan",
            "--format",
            "json",
            "--range",
            &format!("{head}..{later}"),
            ".",
        ],
        repo.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(
        out.code, 0,
        "tree mode reads the ignore file: {}",
        out.stdout
    );
    assert_eq!(json(&out)["ignored"], 1);
}

#[test]
fn a_baseline_the_change_adds_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("TWITTER_BEARER_TOKEN={BEARER}\n"),
    )
    .unwrap();
    let baseline = keyguard(&["scan", "--format", "json", "."], dir.path()).stdout;
    let (repo, base, head) = pull_request(|r| {
        r.write(".env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
        r.write("keyguard-baseline.json", &baseline);
    });
    let range = format!("{base}..{head}");
    let out = keyguard(
        &[
            "scan",
            "--format",
            "json",
            "--range",
            &range,
            "--baseline",
            "keyguard-baseline.json",
            ".",
        ],
        repo.path(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = json(&out);
    assert_eq!(report["baselined"], 0);
    assert_eq!(report["addedWaivers"][0]["path"], "keyguard-baseline.json");
}

#[test]
fn inline_waivers_the_change_adds_are_listed_and_can_be_refused() {
    let (repo, base, head) = pull_request(|r| {
        r.write(
            ".env",
            &format!("TWITTER_BEARER_TOKEN={BEARER} # keyguard:allow\n"),
        );
    });
    let range = format!("{base}..{head}");
    let out = keyguard(
        &["scan", "--format", "json", "--range", &range, "."],
        repo.path(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let added = json(&out)["addedWaivers"].clone();
    assert_eq!(added.as_array().unwrap().len(), 1, "{added}");
    assert_eq!(
        (added[0]["path"].as_str(), added[0]["line"].as_u64()),
        (Some(".env"), Some(1))
    );

    let annotations = keyguard(
        &["scan", "--format", "github", "--range", &range, "."],
        repo.path(),
    );
    assert!(
        annotations
            .stdout
            .contains("::warning file=.env,line=1,title=keyguard%3A waiver added by this change::"),
        "{}",
        annotations.stdout
    );

    let refused = keyguard(
        &[
            "scan",
            "--format",
            "json",
            "--range",
            &range,
            "--no-new-inline-waivers",
            ".",
        ],
        repo.path(),
    );
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert_eq!(finding_paths(&json(&refused)), vec![".env:x-bearer-token"]);

    // A waiver that was already there before the change is not news.
    repo.write("README.md", "bot, v2\n");
    let next = repo.commit("unrelated");
    let out = keyguard(
        &[
            "scan",
            "--format",
            "json",
            "--range",
            &format!("{head}..{next}"),
            ".",
        ],
        repo.path(),
    );
    assert_eq!(json(&out)["addedWaivers"].as_array().unwrap().len(), 0);
}
