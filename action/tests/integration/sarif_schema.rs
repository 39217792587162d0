//! Every SARIF keyguard writes is valid against the SARIF 2.1.0 JSON
//! schema (from Microsoft's jest-sarif package on npm, checked with Python's
//! jsonschema; scripts/test.sh installs both into the cache): a tree with
//! spaces in paths, stdin, history findings, and a run that failed.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn validator() -> (PathBuf, PathBuf) {
    let cache = keyguard_tests::control_plane::cache_root();
    let python = cache.join("python/bin/python");
    let schema = cache.join("sarif/sarif-2.1.0.json");
    let ok = schema.exists()
        && Command::new(&python)
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} or jsonschema in {} is missing: run scripts/test.sh (it fetches the schema with \
         `npm pack @microsoft/jest-sarif@1.0.0-beta.0` and installs jsonschema from PyPI)",
        schema.display(),
        python.display()
    );
    (python, schema)
}

#[test]
fn every_sarif_keyguard_writes_is_valid_sarif_2_1_0() {
    let (python, schema) = validator();
    let repo = Repo::new();
    repo.write("my bot/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.write(
        "100% done/#1.py",
        &format!("consumer_secret = \"{API_SECRET}\"\n"),
    );
    repo.commit("bot");
    let out_dir = tempfile::tempdir().unwrap();
    let sarif = |name: &str| out_dir.path().join(name).display().to_string();
    let tree = keyguard(
        &["scan", "--sarif-file", &sarif("tree.sarif"), "."],
        repo.path(),
    );
    assert_eq!(tree.code, 1, "{}", tree.stderr);
    let history = keyguard(
        &[
            "scan",
            "--history",
            "--sarif-file",
            &sarif("history.sarif"),
            ".",
        ],
        repo.path(),
    );
    assert_eq!(history.code, 1, "{}", history.stderr);
    let stdin = keyguard_env(
        &["scan", "--sarif-file", &sarif("stdin.sarif"), "-"],
        repo.path(),
        &Default::default(),
        Some(format!("TWITTER_BEARER_TOKEN={BEARER}\n").as_bytes()),
    );
    assert_eq!(stdin.code, 1, "{}", stdin.stderr);
    let env = [
        ("INPUT_MODE", "pr".to_string()),
        ("INPUT_SARIF-FILE", sarif("failed.sarif")),
        ("GITHUB_WORKSPACE", repo.path().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let failed = keyguard_env(&["action"], repo.path(), &env, None);
    assert_eq!(failed.code, 2, "{}", failed.stdout);

    let files: Vec<String> = ["tree.sarif", "history.sarif", "stdin.sarif", "failed.sarif"]
        .iter()
        .map(|n| sarif(n))
        .collect();
    let check = Command::new(python)
        .arg(keyguard_tests::repo_root().join("tests/python/validate_sarif.py"))
        .arg(schema)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
