//! The pre-commit hooks install and run with pre-commit as published (from
//! PyPI, in the virtualenv scripts/test.sh makes): a staged token is
//! refused, a clean file passes.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn pre_commit() -> PathBuf {
    let exe = keyguard_tests::control_plane::cache_root().join("python/bin/pre-commit");
    assert!(
        exe.exists(),
        "{} is missing: run scripts/test.sh (it installs pre-commit==4.0.1 from PyPI into that virtualenv)",
        exe.display()
    );
    exe
}

#[test]
fn the_hook_installs_with_pre_commit_and_refuses_a_staged_token() {
    let pre_commit = pre_commit();
    let checkout = keyguard_tests::repo_root();
    let home = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    repo.write("clean.py", "print('hello')\n");
    repo.write("bot.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.git(&["add", "-A"]);
    let run = |file: &str| {
        Command::new(&pre_commit)
            .args([
                "try-repo",
                checkout.to_str().unwrap(),
                "keyguard",
                "--files",
                file,
            ])
            .current_dir(repo.path())
            .env("PRE_COMMIT_HOME", home.path().join("pre-commit"))
            .env("KEYGUARD_HOOK_CACHE", home.path().join("hook"))
            // Build the hook's keyguard from this workspace's debug artifacts.
            .env("KEYGUARD_HOOK_DEBUG", "1")
            .env("CARGO_TARGET_DIR", checkout.join("target"))
            .output()
            .expect("pre-commit runs")
    };
    let leak = run("bot.env");
    let text =
        String::from_utf8_lossy(&leak.stdout).to_string() + &String::from_utf8_lossy(&leak.stderr);
    assert_eq!(leak.status.code(), Some(1), "{text}");
    assert!(
        text.contains("x-bearer-token") && text.contains("bot.env"),
        "{text}"
    );
    assert!(!text.contains(BEARER), "the hook's output leaks the value");
    // An archive is a file the scanner reads: pre-commit passes it (a hook
    // with `types: [text]` never did).
    std::fs::write(
        repo.path().join("backup.zip"),
        zip_of(&[(
            "config/.env",
            format!("TWITTER_BEARER_TOKEN={BEARER}\n").as_bytes(),
        )]),
    )
    .unwrap();
    repo.git(&["add", "-A"]);
    let archive = run("backup.zip");
    let text = String::from_utf8_lossy(&archive.stdout).to_string()
        + &String::from_utf8_lossy(&archive.stderr);
    assert_eq!(archive.status.code(), Some(1), "{text}");
    assert!(text.contains("backup.zip!/config/.env"), "{text}");
    let clean = run("clean.py");
    let text = String::from_utf8_lossy(&clean.stdout).to_string()
        + &String::from_utf8_lossy(&clean.stderr);
    assert_eq!(clean.status.code(), Some(0), "{text}");
}
