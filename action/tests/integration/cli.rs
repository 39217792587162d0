//! The `keyguard` binary end to end: every mode on fixture repositories,
//! waivers, formats, exit codes, and inputs meant to break it.

use std::collections::HashMap;

use crate::support::*;

fn python_client() -> String {
    format!(
        "import tweepy\nclient = tweepy.Client(consumer_key=\"{API_KEY}\", consumer_secret=\"{API_SECRET}\",\n    access_token=\"{ACCESS_TOKEN}\", access_token_secret=\"{ACCESS_SECRET}\")\n"
    )
}

#[test]
fn clean_tree_exits_zero_and_findings_exit_one() {
    let repo = Repo::new();
    repo.write(
        "README.md",
        "# nothing to see\nTWITTER_API_KEY=${{ secrets.TWITTER_API_KEY }}\n",
    );
    let out = keyguard(&["scan", "."], repo.path());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    repo.write("bot.py", &python_client());
    let out = keyguard(&["scan", "."], repo.path());
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    out.assert_redacted();
    for rule in [
        "x-api-key",
        "x-api-key-secret",
        "x-oauth1-access-token",
        "x-oauth1-access-token-secret",
    ] {
        assert!(out.stdout.contains(rule), "missing {rule}:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("bot.py:2:"), "{}", out.stdout);
}

#[test]
fn tree_mode_respects_ignore_files_unless_no_ignore() {
    let repo = Repo::new();
    repo.write(".gitignore", "secrets.env\n");
    repo.write("secrets.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    repo.write("fixtures/known.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    repo.write(".keyguardignore", "fixtures/\n");
    let out = keyguard(&["scan", "."], repo.path());
    assert_eq!(out.code, 0, "{}", out.stdout);

    let out = keyguard(
        &["scan", "--no-ignore", "--format", "json", "."],
        repo.path(),
    );
    assert_eq!(out.code, 1);
    let paths = finding_paths(&json(&out));
    assert!(
        paths.contains(&"secrets.env:x-bearer-token".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"fixtures/known.env:x-bearer-token".to_string()),
        "{paths:?}"
    );
    out.assert_redacted();
}

#[test]
fn fingerprints_in_the_ignore_file_and_inline_allow_waive_findings() {
    let repo = Repo::new();
    repo.write("a.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    repo.write(
        "b.rb",
        &format!("config.consumer_secret = \"{API_SECRET}\" # keyguard:allow test fixture\n"),
    );
    let report = json(&keyguard(&["scan", "--format", "json", "."], repo.path()));
    assert_eq!(finding_paths(&report), vec!["a.env:x-bearer-token"]);
    assert_eq!(report["stats"]["waivedInline"], 1);
    let fingerprint = report["findings"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    repo.write(
        ".keyguardignore",
        &format!("# accepted: revoked on 2026-11-30\n{fingerprint}\n"),
    );
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(json(&out)["ignored"], 1);
}

#[test]
fn nothing_but_the_root_ignore_file_and_gitignore_hides_a_file_in_a_tree_scan() {
    let repo = Repo::new();
    // A nested ignore file waiving its whole directory, ripgrep's `.ignore`,
    // and a file tracked (force-added) although .gitignore matches it.
    repo.write("services/bot/.keyguardignore", "*\n");
    repo.write(
        "services/bot/creds.env",
        &format!("X_BEARER_TOKEN={BEARER}\n"),
    );
    repo.write("tools/.ignore", "*\n");
    repo.write("tools/creds.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    repo.write("config/.gitignore", "*.env\n");
    repo.write("config/prod.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    // A Latin-1 name (not UTF-8), force-added too: read by its exact bytes.
    let latin1 = {
        use std::os::unix::ffi::OsStrExt;
        repo.path()
            .join(std::ffi::OsStr::from_bytes(b"config/caf\xe9.env"))
    };
    std::fs::write(&latin1, format!("X_BEARER_TOKEN={BEARER}\n")).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["add", "-f", "config"]);
    repo.commit("three ways to hide a file");
    // Ignored and untracked: still skipped.
    repo.write("config/local.env", &format!("X_BEARER_TOKEN={BEARER}\n"));

    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let mut paths = finding_paths(&json(&out));
    paths.sort();
    assert_eq!(
        paths,
        [
            "config/caf\\xE9.env:x-bearer-token",
            "config/prod.env:x-bearer-token",
            "services/bot/creds.env:x-bearer-token",
            "tools/creds.env:x-bearer-token",
        ]
    );
    assert!(
        out.stderr
            .contains("services/bot/.keyguardignore is not read"),
        "the nested ignore file is named: {}",
        out.stderr
    );
}

#[test]
fn x_s_published_examples_are_listed_as_examples_and_never_fail() {
    let repo = Repo::new();
    // X's own "Creating a signature" values, as SDK tests copy them.
    repo.write(
        "test_signature.py",
        concat!(
            "import tweepy\n",
            "CONSUMER_KEY = \"xvz1evFS4wEEPTGEFPHBog\"\n", // keyguard:allow
            "ACCESS_TOKEN = \"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\"\n", // keyguard:allow
        ),
    );
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 0, "examples never fail: {}", out.stdout);
    let report = json(&out);
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
    let examples = report["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2, "{report}");
    assert!(examples.iter().all(|e| e["publishedAt"]
        .as_str()
        .unwrap()
        .starts_with("https://docs.x.com/")));
    let text = keyguard(&["scan", "."], repo.path());
    assert!(
        text.stdout.contains("note: X's published example"),
        "{}",
        text.stdout
    );

    // A real-shaped value beside them still fails.
    repo.write("bot.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    let out = keyguard(&["scan", "."], repo.path());
    assert_eq!(out.code, 1, "{}", out.stdout);
}

#[test]
fn baseline_fails_only_on_new_findings() {
    let repo = Repo::new();
    repo.write("old.py", &python_client());
    let first = keyguard(
        &["scan", "--format", "json", "-o", "baseline.json", "."],
        repo.path(),
    );
    assert_eq!(first.code, 1);
    let with_baseline = keyguard(&["scan", "--baseline", "baseline.json", "."], repo.path());
    assert_eq!(with_baseline.code, 0, "{}", with_baseline.stdout);

    repo.write(
        "new.sh",
        &format!("export TWITTER_BEARER_TOKEN='{BEARER}'\n"),
    );
    let out = keyguard(
        &[
            "scan",
            "--baseline",
            "baseline.json",
            "--format",
            "json",
            ".",
        ],
        repo.path(),
    );
    assert_eq!(out.code, 1);
    let report = json(&out);
    assert_eq!(finding_paths(&report), vec!["new.sh:x-bearer-token"]);
    assert_eq!(report["baselined"], 4);

    let bad = keyguard(&["scan", "--baseline", "old.py", "."], repo.path());
    assert_eq!(bad.code, 2, "a baseline that is not a report is an error");
    assert!(
        bad.stderr.contains("not a keyguard JSON report"),
        "{}",
        bad.stderr
    );
    bad.assert_redacted();
}

#[test]
fn history_finds_secrets_that_only_history_holds_with_their_first_commit() {
    let repo = Repo::new();
    repo.write("README.md", "hello\n");
    repo.commit("init");
    repo.write(
        "config/deleted.yml",
        &format!("twitter:\n  consumer_key: {API_KEY}\n"),
    );
    repo.write("bot.py", &python_client());
    let introduced = repo.commit("add bot");
    // The same content under another path later: one blob, scanned once.
    repo.write("copy/bot.py", &python_client());
    repo.commit("copy");
    std::fs::remove_file(repo.path().join("config/deleted.yml")).unwrap();
    repo.write("bot.py", "import os\nkey = os.environ['TWITTER_API_KEY']\n");
    std::fs::remove_file(repo.path().join("copy/bot.py")).unwrap();
    repo.commit("remove credentials");
    // A branch with another credential.
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("feature.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    let feature = repo.commit("feature");
    repo.git(&["checkout", "-q", "main"]);

    assert_eq!(
        keyguard(&["scan", "."], repo.path()).code,
        0,
        "the tree is clean"
    );
    let out = keyguard(&["scan", "--history", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.assert_redacted();
    let report = json(&out);
    let findings = report["findings"].as_array().unwrap();
    let bot: Vec<_> = findings
        .iter()
        .filter(|f| f["ruleId"] == "x-api-key-secret")
        .collect();
    assert_eq!(bot.len(), 1, "one blob, reported once: {findings:#?}");
    assert_eq!(bot[0]["path"], "bot.py");
    assert_eq!(bot[0]["commit"]["commit"], introduced.as_str());
    // Every blob is placed at its own first commit (one walk places all).
    let placed = |path: &str, rule: &str| {
        findings
            .iter()
            .find(|f| f["path"] == path && f["ruleId"] == rule)
            .unwrap_or_else(|| panic!("{path}: {findings:#?}"))["commit"]["commit"]
            .clone()
    };
    assert_eq!(
        placed("config/deleted.yml", "x-api-key"),
        introduced.as_str()
    );
    assert_eq!(placed("feature.env", "x-bearer-token"), feature.as_str());
}

#[test]
fn range_reports_only_what_the_commits_add() {
    let repo = Repo::new();
    repo.write("legacy.py", &python_client());
    let base = repo.commit("legacy credential already on main");
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.write("legacy.py", &format!("# touched\n{}", python_client()));
    repo.write("new.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    let head = repo.commit("pr");
    let range = format!("{base}..{head}");
    let out = keyguard(
        &["scan", "--range", &range, "--format", "json", "."],
        repo.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(finding_paths(&report), vec!["new.env:x-bearer-token"]);
    assert_eq!(report["findings"][0]["commit"]["commit"], head.as_str());

    let bad = keyguard(&["scan", "--range", "nope..HEAD", "."], repo.path());
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("\"nope\" is not a commit"),
        "{}",
        bad.stderr
    );
}

#[test]
fn stdin_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("curl -H 'Authorization: Bearer {BEARER}' https://api.x.com/2/tweets\n");
    let out = keyguard_env(
        &["scan", "-"],
        dir.path(),
        &HashMap::new(),
        Some(input.as_bytes()),
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("<stdin>:1:"), "{}", out.stdout);
    out.assert_redacted();
}

#[test]
fn sarif_github_and_summary_outputs_are_valid_and_redacted() {
    let repo = Repo::new();
    repo.write("dir,with:odd%chars/bot.py", &python_client());
    let summary = repo.path().join("summary.md");
    let env: HashMap<String, String> = [(
        "GITHUB_STEP_SUMMARY".to_string(),
        summary.display().to_string(),
    )]
    .into();

    let out = keyguard_env(&["scan", "--format", "sarif", "."], repo.path(), &env, None);
    assert_eq!(out.code, 1);
    out.assert_redacted();
    let sarif: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
        assert!(r["partialFingerprints"]["keyguardValue/v1"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    let out = keyguard_env(
        &["scan", "--format", "github", "."],
        repo.path(),
        &env,
        None,
    );
    out.assert_redacted();
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("::error file=dir%2Cwith%3Aodd%25chars/bot.py,line=2,col="),
        "{first}"
    );

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("4 X (Twitter) credential(s) found"), "{md}");
    for v in ALL {
        assert!(!md.contains(v), "the summary leaks a value");
    }
}

#[test]
fn strange_inputs_never_panic_nor_hide_the_rest() {
    let repo = Repo::new();
    repo.write("good.py", &python_client());
    std::fs::write(
        repo.path().join("binary.bin"),
        [0u8, 159, 146, 150, 0, 1, 2, 3],
    )
    .unwrap();
    let mut invalid_utf8 = vec![0xff, 0xfe, 0xfd, b'\n'];
    invalid_utf8.extend_from_slice(format!("X_BEARER_TOKEN={BEARER}\n").as_bytes());
    std::fs::write(repo.path().join("latin1.txt"), invalid_utf8).unwrap();
    // 100 MB on one line, with a credential at the very end.
    let mut huge = vec![b'a'; 100 << 20];
    huge.extend_from_slice(format!(" consumer_secret=\"{API_SECRET}\" twitter\n").as_bytes());
    std::fs::write(repo.path().join("huge.txt"), huge).unwrap();
    std::os::unix::fs::symlink("loop", repo.path().join("loop")).unwrap();
    std::fs::create_dir_all(repo.path().join("cycle")).unwrap();
    std::os::unix::fs::symlink("..", repo.path().join("cycle/up")).unwrap();
    std::os::unix::fs::symlink("does-not-exist", repo.path().join("dangling")).unwrap();

    let out = keyguard(&["scan", "--follow", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    let paths = finding_paths(&report);
    assert!(
        paths.contains(&"good.py:x-api-key".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"latin1.txt:x-bearer-token".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"huge.txt:x-api-key-secret".to_string()),
        "{paths:?}"
    );
    let huge = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "huge.txt")
        .unwrap();
    assert_eq!(huge["line"], 1);
    assert!(report["stats"]["binarySkipped"].as_u64().unwrap() >= 1);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("loop") || warnings.contains("cycle"),
        "a symlink loop is reported: {warnings}"
    );
    assert!(
        warnings.contains("dangling"),
        "an unreadable entry is reported: {warnings}"
    );
}

/// Cuts a loose object short: git prints the object's header, then stops
/// ("fatal: unable to stream"), ending cat-file for everything after it.
fn cut_short(repo: &Repo, object: &str) {
    let path = repo
        .path()
        .join(".git/objects")
        .join(&object[..2])
        .join(&object[2..]);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    let stored = std::fs::read(&path).unwrap();
    let mut content = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(&stored[..]),
        &mut content,
    )
    .unwrap();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut zlib, &content).unwrap();
    let whole = zlib.finish().unwrap();
    std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
}

/// History is read by one cat-file per worker, each dealt runs of
/// objects: whichever stream reads a blob, each finding is reported once
/// and the report is the one a single stream gives; an unreadable object
/// in one stream sends the scan back to one stream that steps over it,
/// with nothing the first try found reported twice.
#[test]
fn history_read_by_parallel_streams_reports_what_one_stream_reports() {
    let repo = Repo::new();
    // 300 blobs: runs of 64 reach every stream; a leak in each run.
    for i in 0..300 {
        let leak = match i % 50 == 7 {
            true => format!("TWITTER_BEARER_TOKEN={BEARER}\n"),
            false => String::new(),
        };
        repo.write(&format!("f{i:03}.env"), &format!("# file {i}\n{leak}"));
    }
    repo.commit("many");
    let scan = |threads: &str| {
        let args = [
            "scan",
            "--history",
            "--threads",
            threads,
            "--format",
            "json",
            ".",
        ];
        let out = keyguard(&args, repo.path());
        out.assert_redacted();
        let report = json(&out);
        let mut found = finding_paths(&report);
        found.sort();
        (out.code, found, report["incomplete"].to_string())
    };
    let (code, one, _) = scan("1");
    assert_eq!((code, one.len()), (1, 6), "{one:?}");
    assert_eq!(scan("4"), (1, one.clone(), "[]".into()));

    let broken = repo.git(&["rev-parse", "HEAD:f200.env"]);
    cut_short(&repo, &broken);
    for threads in ["1", "4"] {
        let (code, found, incomplete) = scan(threads);
        assert_eq!((code, &found), (2, &one), "threads {threads}");
        assert!(incomplete.contains(&broken), "{incomplete}");
    }
}

/// One corrupt object costs only itself: git cat-file stops at it, and the
/// scan goes on after it, finds what the rest of history holds, and is
/// incomplete (exit 2) with the findings kept.
#[test]
fn one_unreadable_object_in_history_costs_only_itself() {
    let repo = Repo::new();
    repo.write("old.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.commit("old");
    repo.write("notes.txt", "nothing here\n");
    repo.commit("notes");
    repo.write(
        "new.py",
        &format!("consumer_key = \"{API_KEY}\"\nconsumer_secret = \"{API_SECRET}\"\n"),
    );
    repo.commit("new");
    let broken = repo.git(&["rev-parse", "HEAD:notes.txt"]);
    cut_short(&repo, &broken);

    let out = keyguard(&["scan", "--history", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    let mut found: Vec<String> = finding_paths(&report)
        .into_iter()
        .map(|p| p.split(':').next().unwrap().to_string())
        .collect();
    found.sort();
    found.dedup();
    assert_eq!(found, ["new.py", "old.env"], "{report}");
    let incomplete = report["incomplete"].to_string();
    assert!(incomplete.contains(&broken), "{incomplete}");
}

#[test]
fn corrupt_or_missing_repositories_are_errors_with_git_s_message() {
    let repo = Repo::new();
    repo.write("a.txt", "a\n");
    repo.commit("one");
    // Break every object.
    let objects = repo.path().join(".git/objects");
    for entry in walk(&objects) {
        if entry.is_file() && entry.parent().unwrap().file_name().unwrap().len() == 2 {
            let mut perms = std::fs::metadata(&entry).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&entry, perms).unwrap();
            std::fs::write(&entry, b"garbage").unwrap();
        }
    }
    // Nothing readable: the scan is incomplete (exit 2) and says why, in
    // git's words, as it would beside findings from readable objects.
    let out = keyguard(&["scan", "--history", "."], repo.path());
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(printed.contains("incomplete scan"), "{printed}");
    assert!(printed.contains("is corrupt"), "{printed}");

    let plain = tempfile::tempdir().unwrap();
    let out = keyguard(&["scan", "--history", "."], plain.path());
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not a git repository"),
        "{}",
        out.stderr
    );

    let out = keyguard(&["scan", "/definitely/not/here"], plain.path());
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no such file or directory"),
        "{}",
        out.stderr
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Paths read from where the scan was asked, as grep and ripgrep print them.
#[test]
fn paths_are_shown_relative_to_the_working_directory() {
    let repo = Repo::new();
    repo.write("src/bot.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.write("ops/app.py", &python_client());
    let out = keyguard(&["scan", "--format", "json", "src"], repo.path());
    assert_eq!(
        finding_paths(&json(&out)),
        vec!["src/bot.env:x-bearer-token"]
    );
    let out = keyguard(&["scan", "src/"], repo.path());
    assert!(out.stdout.starts_with("src/bot.env:1:"), "{}", out.stdout);
    let out = keyguard(&["scan", "--format", "json", "src", "ops"], repo.path());
    let paths: Vec<String> = finding_paths(&json(&out))
        .into_iter()
        .map(|p| p.split(':').next().unwrap().to_string())
        .collect();
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("src/") || p.starts_with("ops/")),
        "{paths:?}"
    );
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert!(finding_paths(&json(&out)).contains(&"src/bot.env:x-bearer-token".to_string()));
}

/// `keyguard scan | head` ends quietly with the scan's own exit code.
#[test]
fn a_closed_pipe_exits_quietly_with_the_scan_s_code() {
    use std::io::{BufRead, BufReader};
    let repo = Repo::new();
    for i in 0..2000 {
        repo.write(
            &format!("f{i}.env"),
            &format!("TWITTER_BEARER_TOKEN={BEARER}\n"),
        );
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["scan", "."])
        .current_dir(repo.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("x-bearer-token"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn boolean_environment_variables_take_one_and_zero_and_verbose_names_skips() {
    let repo = Repo::new();
    repo.write(".env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    std::fs::write(
        repo.path().join("logo.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0binary",
    )
    .unwrap();
    let with = |name: &str, value: &str| {
        let env = [(name.to_string(), value.to_string())]
            .into_iter()
            .collect();
        keyguard_env(&["scan", "."], repo.path(), &env, None)
    };
    let cases = [
        ("1", 0),
        ("true", 0),
        ("yes", 0),
        ("0", 1),
        ("false", 1),
        ("no", 1),
    ];
    for (value, code) in cases {
        let out = with("KEYGUARD_NO_FAIL", value);
        assert_eq!(out.code, code, "KEYGUARD_NO_FAIL={value}: {}", out.stderr);
    }
    let out = with("KEYGUARD_VERBOSE", "1");
    assert!(
        out.stderr.contains("skipped logo.png (binary)"),
        "{}",
        out.stderr
    );
    let quiet = keyguard(&["scan", "."], repo.path());
    assert!(!quiet.stderr.contains("logo.png"), "{}", quiet.stderr);
}

/// Range mode run in a subdirectory counts only changes under it, and
/// names them from the repository root.
#[test]
fn a_range_in_a_subdirectory_counts_only_its_changes() {
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.write("svc/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.write("other/app.py", &python_client());
    repo.commit("both");
    let out = keyguard(
        &[
            "scan",
            "--format",
            "json",
            "--range",
            &format!("{base}..HEAD"),
            "svc",
        ],
        repo.path(),
    );
    assert_eq!(finding_paths(&json(&out)), vec!["svc/.env:x-bearer-token"]);
}

/// `--known`: the operator's status (fingerprints only) finds the exact
/// live values anywhere, in any encoding, even with no rule's help, and
/// names their owner; look-alikes with other values are not reported.
#[test]
fn known_fingerprints_find_exact_values_and_name_their_owner() {
    let repo = Repo::new();
    // No name a rule knows, split and re-encoded the way leaks travel.
    repo.write(
        "notes.txt",
        &format!("prod creds for later: {API_SECRET}\n"),
    );
    repo.write(
        "dump.json",
        &format!(
            "{{\"blob\": \"{}\"}}\n",
            base64_of(&format!("k={ACCESS_TOKEN}\ntwitter=1\n"))
        ),
    );
    repo.write(
        "other.txt",
        "prod creds: AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIII\n",
    );
    let fp = |v: &str| keyguard_credentials::fingerprint(v.as_bytes()).to_string();
    let status = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [{
        "metadata": {"namespace": "team", "name": "bot"},
        "spec": {"environments": [{"name": "prod", "source": {"secretRef": {"name": "bot-keys"}}}]},
        "status": {"environments": [{"name": "prod", "sourceCredentials": [
            {"key": "apiKeySecret", "fingerprint": fp(API_SECRET), "since": "2026-11-01T00:00:00Z"},
            {"key": "accessToken", "fingerprint": fp(ACCESS_TOKEN), "since": "2026-11-01T00:00:00Z"}
        ]}]}
    }]});
    let known = repo.path().join("known.json");
    std::fs::write(&known, status.to_string()).unwrap();
    let out = keyguard(
        &[
            "scan",
            "--format",
            "json",
            "--known",
            known.to_str().unwrap(),
            "notes.txt",
            "dump.json",
            "other.txt",
        ],
        repo.path(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    let findings = report["findings"].as_array().unwrap();
    let mut seen: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["ruleName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "dump.json".into(),
                "Known live X credential (team/bot, environment prod, accessToken)".into()
            ),
            (
                "notes.txt".into(),
                "Known live X credential (team/bot, environment prod, apiKeySecret)".into()
            ),
        ],
        "{report}"
    );
    // Each says what to do now, for its kind and where it lives.
    let steps: Vec<&str> = findings
        .iter()
        .map(|f| f["nextStep"].as_str().unwrap())
        .collect();
    assert!(
        steps
            .iter()
            .all(|s| s.contains("X developer portal") && s.contains("Secret team/bot-keys")),
        "{steps:?}"
    );
    let text = keyguard(
        &["scan", "--known", known.to_str().unwrap(), "notes.txt"],
        repo.path(),
    );
    assert!(
        text.stdout
            .contains("; next: regenerate the API key and secret"),
        "{}",
        text.stdout
    );
    // Without --known the bare secret in prose is not a finding.
    let plain = keyguard(&["scan", "--format", "json", "notes.txt"], repo.path());
    assert_eq!(plain.code, 0, "{}", plain.stdout);

    std::fs::write(&known, "not a fingerprint\n").unwrap();
    let bad = keyguard(
        &["scan", "--known", known.to_str().unwrap(), "."],
        repo.path(),
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("is not a fingerprint"),
        "{}",
        bad.stderr
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// History reaches older stashes (the reflog) always, and on request blobs
/// nothing reaches any more and commit messages.
#[test]
fn a_path_that_is_not_utf8_is_reported_exactly_in_every_mode() {
    use std::os::unix::ffi::OsStrExt;
    let repo = Repo::new();
    repo.write("README.md", "# bot\n");
    repo.commit("start");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.env");
    std::fs::write(repo.path().join(name), format!("X_BEARER_TOKEN={BEARER}\n")).unwrap();
    repo.git(&["add", "-A"]);
    repo.commit("a Latin-1 file name");
    for mode in [
        &["scan"][..],
        &["scan", "--history"],
        &["scan", "--range", "HEAD~1..HEAD"],
    ] {
        let args: Vec<&str> = mode
            .iter()
            .copied()
            .chain(["--format", "sarif", "."])
            .collect();
        let out = keyguard(&args, repo.path());
        assert!(
            out.code == 1,
            "{mode:?} exit {}: {}{}",
            out.code,
            out.stdout,
            out.stderr
        );
        let sarif = json(&out);
        let uri = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
            ["artifactLocation"]["uri"];
        assert_eq!(
            uri, "caf%E9.env",
            "{mode:?}: the real bytes, percent-encoded"
        );
        let args: Vec<&str> = mode.iter().copied().chain(["."]).collect();
        let out = keyguard(&args, repo.path());
        assert!(
            out.stdout.contains("caf\\xE9.env:1:"),
            "{mode:?}: {}",
            out.stdout
        );
    }
}

#[test]
fn a_missing_object_makes_history_incomplete_and_keeps_every_finding() {
    let repo = Repo::new();
    repo.write("bot.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    repo.write("notes.txt", "a file whose blob will go missing\n");
    repo.commit("two files");
    let blob = repo
        .git(&["rev-parse", "HEAD:notes.txt"])
        .trim()
        .to_string();
    let object = repo
        .path()
        .join(".git/objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    std::fs::remove_file(&object).expect("the blob is a loose object");

    let out = keyguard(&["scan", "--history", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 2, "incomplete: {}{}", out.stdout, out.stderr);
    let report = json(&out);
    assert_eq!(
        finding_paths(&report),
        ["bot.env:x-bearer-token"],
        "the finding is kept"
    );
    let incomplete = report["incomplete"].to_string();
    assert!(
        incomplete.contains(&blob),
        "names the missing object: {incomplete}"
    );

    let out = keyguard(&["scan", "--history", "."], repo.path());
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("bot.env"), "{}", out.stdout);
}

#[test]
fn history_covers_stashes_and_optionally_unreachable_blobs_and_messages() {
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    repo.commit("base");
    // Two stashes: the older one lives only in refs/stash's reflog.
    repo.write(
        "stashed.env",
        &format!("TWITTER_ACCESS_TOKEN={ACCESS_TOKEN}\n"),
    );
    repo.git(&["add", "stashed.env"]);
    repo.git(&["stash"]);
    repo.write("README.md", "bot, edited\n");
    repo.git(&["stash"]);
    // A commit reset away, its reflog expired: unreachable.
    repo.write("gone.py", &python_client());
    repo.commit("oops");
    repo.git(&["reset", "-q", "--hard", "HEAD~1"]);
    repo.git(&[
        "reflog",
        "expire",
        "--expire=now",
        "HEAD",
        "refs/heads/main",
    ]);
    // A credential in a commit message.
    repo.write("docs.md", "docs\n");
    repo.git(&["add", "docs.md"]);
    repo.git(&["commit", "-q", "-m", &format!("debug: bearer is {BEARER}")]);

    let paths = |args: &[&str]| -> Vec<String> {
        let out = keyguard(args, repo.path());
        out.assert_redacted();
        let mut p: Vec<String> = json(&out)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p.dedup();
        p
    };
    let plain = paths(&["scan", "--history", "--format", "json", "."]);
    assert_eq!(
        plain,
        vec!["stashed.env"],
        "the older stash is found by default"
    );
    let all = paths(&[
        "scan",
        "--history",
        "--unreachable",
        "--commit-messages",
        "--format",
        "json",
        ".",
    ]);
    assert!(all.contains(&"stashed.env".to_string()), "{all:?}");
    assert!(
        all.contains(&"gone.py".to_string()),
        "the blob of a commit reset away is named by its path there: {all:?}"
    );
    let out = keyguard(
        &[
            "scan",
            "--history",
            "--unreachable",
            "--format",
            "json",
            ".",
        ],
        repo.path(),
    );
    let report = json(&out);
    let findings = report["findings"].as_array().unwrap();
    let gone: Vec<&serde_json::Value> =
        findings.iter().filter(|f| f["path"] == "gone.py").collect();
    assert!(
        gone.iter().all(|f| f["commit"]["commit"]
            .as_str()
            .is_some_and(|c| c.len() == 40)),
        "and by the unreachable commit that added it: {gone:?}"
    );
    let mut places: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}:{}",
                f["path"], f["line"], f["column"], f["ruleId"]
            )
        })
        .collect();
    let count = places.len();
    places.sort();
    places.dedup();
    assert_eq!(places.len(), count, "each finding once: {places:?}");
    assert!(
        all.iter()
            .any(|p| p.starts_with("commit ") && p.ends_with("(message)")),
        "{all:?}"
    );
}

/// `--version` names the git revision; completions and the manual page are
/// generated from the same command-line definition.
#[test]
fn version_completions_and_manual() {
    let dir = tempfile::tempdir().unwrap();
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(keyguard_tests::repo_root())
        .output()
        .unwrap();
    let revision = String::from_utf8_lossy(&revision.stdout).trim().to_string();
    let version = keyguard(&["--version"], dir.path());
    assert!(
        version
            .stdout
            .starts_with(&format!("keyguard {} (", env!("CARGO_PKG_VERSION"))),
        "{}",
        version.stdout
    );
    assert!(
        version.stdout.contains(&format!("({revision})")),
        "built at {revision}: {}",
        version.stdout
    );
    for (shell, marker) in [
        ("bash", "_keyguard()"),
        ("zsh", "#compdef keyguard"),
        ("fish", "complete -c keyguard"),
    ] {
        let out = keyguard(&["completions", shell], dir.path());
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(
            out.stdout.contains(marker),
            "{shell}: {}",
            &out.stdout[..out.stdout.len().min(300)]
        );
        assert!(
            out.stdout.contains("known"),
            "{shell} completes scan's flags"
        );
    }
    let man = keyguard(&["man"], dir.path());
    assert!(
        man.stdout.starts_with(".ie") && man.stdout.contains(".TH keyguard 1"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
}

/// A tracked symbolic link that .gitignore matches points outside the
/// tree: it is not followed (as the walker follows none) unless --follow.
#[test]
fn a_tracked_but_ignored_symbolic_link_is_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("host.env");
    std::fs::write(&target, format!("X_BEARER_TOKEN={BEARER}\n")).unwrap();
    let repo = Repo::new();
    repo.write(".gitignore", "*.env\n");
    std::os::unix::fs::symlink(&target, repo.path().join("linked.env")).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["add", "-f", "linked.env"]);
    repo.commit("a link into the machine");
    let out = keyguard(&["scan", "."], repo.path());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let followed = keyguard(&["scan", "--follow", "--no-ignore", "."], repo.path());
    assert_eq!(followed.code, 1, "{}{}", followed.stdout, followed.stderr);
}
