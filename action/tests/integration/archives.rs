//! Archives are opened: members are scanned and named `archive!/member`,
//! nested archives too, and a bomb is stopped with a warning.

use std::io::Write;

use crate::support::*;

fn gz_of(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn tar_gz_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, data).unwrap();
    gz_of(&tar.into_inner().unwrap())
}

#[test]
fn members_of_archives_are_scanned_and_named_inside_them() {
    let env = format!("TWITTER_BEARER_TOKEN={BEARER}\n");
    let repo = Repo::new();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(repo.path().join(name), bytes).unwrap();
    };
    write(
        "backup.zip",
        &zip_of(&[("config/.env", env.as_bytes()), ("README", b"hi")]),
    );
    write(
        "app.jar",
        &zip_of(&[(
            "BOOT-INF/app.properties",
            format!("twitter.consumer.secret={API_SECRET}\n").as_bytes(),
        )]),
    );
    write("logs.tar.gz", &tar_gz_of("var/log/app.log", env.as_bytes()));
    write("dump.sql.gz", &gz_of(env.as_bytes()));
    write(
        "nested.zip",
        &zip_of(&[("inner.zip", &zip_of(&[("deep/.env", env.as_bytes())]))]),
    );
    // 200 MiB of zeros in a few hundred KiB: read to the member's budget,
    // and the rest left unread makes the scan incomplete (exit 2), with the
    // findings kept.
    write(
        "bomb.zip",
        &zip_of(&[("zeros.txt", &vec![b'0'; 200 << 20])]),
    );
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 2, "incomplete: {}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    let mut paths: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["path"].as_str().unwrap(), f["line"]))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "app.jar!/BOOT-INF/app.properties:1",
            "backup.zip!/config/.env:1",
            "dump.sql.gz!/dump.sql:1",
            "logs.tar.gz!/var/log/app.log:1",
            "nested.zip!/inner.zip!/deep/.env:1",
        ],
        "{report}"
    );
    let incomplete = report["incomplete"].to_string();
    assert!(incomplete.contains("bomb.zip!/zeros.txt"), "{incomplete}");
    std::fs::remove_file(repo.path().join("bomb.zip")).unwrap();

    // History mode opens archives in blobs too.
    repo.git(&["add", "backup.zip"]);
    repo.commit("backup");
    let out = keyguard(&["scan", "--history", "--format", "json", "."], repo.path());
    assert!(
        finding_paths(&json(&out)).contains(&"backup.zip!/config/.env:x-bearer-token".to_string()),
        "{}",
        out.stdout
    );
}

/// A pull request that adds an archive has its members scanned (`--range`,
/// the Action's pr mode), and one that changes an archive is charged only
/// with what it adds inside it.
#[test]
fn a_range_opens_the_archives_it_adds_or_changes() {
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    let bearer_env = format!("TWITTER_BEARER_TOKEN={BEARER}\n");
    std::fs::write(
        repo.path().join("deploy.zip"),
        zip_of(&[("deploy/.env", bearer_env.as_bytes())]),
    )
    .unwrap();
    let added = repo.commit("add the deploy bundle");
    let out = keyguard(
        &[
            "scan",
            "--range",
            &format!("{base}..{added}"),
            "--format",
            "json",
            ".",
        ],
        repo.path(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    assert_eq!(
        finding_paths(&report),
        ["deploy.zip!/deploy/.env:x-bearer-token"]
    );
    assert_eq!(report["findings"][0]["commit"]["commit"], added.as_str());

    // The next change keeps that member and adds another secret: only the
    // new one is this change's.
    let keys = format!("consumer_key = \"{API_KEY}\"\nconsumer_secret = \"{API_SECRET}\"\n");
    std::fs::write(
        repo.path().join("deploy.zip"),
        zip_of(&[
            ("deploy/.env", bearer_env.as_bytes()),
            ("bot.py", keys.as_bytes()),
        ]),
    )
    .unwrap();
    let changed = repo.commit("add the bot to the bundle");
    let out = keyguard(
        &[
            "scan",
            "--range",
            &format!("{added}..{changed}"),
            "--format",
            "json",
            ".",
        ],
        repo.path(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let mut paths = finding_paths(&json(&out));
    paths.sort();
    assert!(
        paths.iter().all(|p| p.starts_with("deploy.zip!/bot.py:")) && !paths.is_empty(),
        "{paths:?}"
    );
}

/// A limit never hides a leak (gitleaks finds both): a secret padded with
/// 2 MB of spaces in a zip (an expansion ratio past any bomb guard) is
/// found and the scan is complete; a secret on the first line of a log
/// whose gzip expands past the member budget is found, and the unread rest
/// makes the scan incomplete: exit 2 in every format, never a clean 0.
#[test]
fn limits_never_turn_a_leak_into_a_clean_result() {
    let env = format!("TWITTER_BEARER_TOKEN={BEARER}\n");
    let repo = Repo::new();
    let mut padded = env.clone().into_bytes();
    padded.extend(std::iter::repeat_n(b' ', 2 << 20));
    std::fs::write(
        repo.path().join("padded.zip"),
        zip_of(&[("config/.env", &padded)]),
    )
    .unwrap();
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(json(&out)["incomplete"], serde_json::json!([]));

    let mut log = env.into_bytes();
    log.extend(std::iter::repeat_n(b'.', 70 << 20));
    std::fs::write(repo.path().join("app.log.gz"), gz_of(&log)).unwrap();
    let out = keyguard(&["scan", "--format", "json", "."], repo.path());
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let report = json(&out);
    let paths = report["findings"].to_string();
    assert!(
        paths.contains("app.log.gz!/app.log"),
        "the first line is scanned: {paths}"
    );
    assert!(
        report["incomplete"]
            .to_string()
            .contains("app.log.gz!/app.log"),
        "{report}"
    );
    let sarif_path = repo.path().join("out.sarif");
    let out = keyguard(
        &["scan", "--sarif-file", sarif_path.to_str().unwrap(), "."],
        repo.path(),
    );
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("incomplete scan"), "{}", out.stdout);
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif_path).unwrap()).unwrap();
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
}
