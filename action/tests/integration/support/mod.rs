//! Helpers for the scanner's tests: fixture repositories built with git,
//! and running the real `keyguard` binary.

#![allow(dead_code)]

pub mod github_api;
pub mod releases;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Synthetic credentials in X's shapes (random, never issued).
pub const API_KEY: &str = "u8jzPde0IgxLd6GncfBAep";
pub const API_SECRET: &str = "jIhKtJ0RlgLKOmxgJTeKdNnFRIBXuDL7DxtpYlSXp";
pub const ACCESS_TOKEN: &str = "370773112-dUStPKR0CsTy4Qwb8DwkNhFdnXsiVpzz63FfkCzJ";
pub const ACCESS_SECRET: &str = "S2G8NPRVdD53X83RZJzzzzgEOzdmenCkhvMdgaKjIg8xN";
pub const BEARER: &str = "AAAAAAAAAAAAAAAAAAAAAGzvAmwufUxAAAAAAAbvJDCTbyvHNsG9eh6Yo4%2Bgfqrc5Xl%3DrWi0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3hDavJA7";
pub const ALL: [&str; 5] = [API_KEY, API_SECRET, ACCESS_TOKEN, ACCESS_SECRET, BEARER];

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// No credential value anywhere in what the process printed, in any
    /// form it travels in (see `keyguard_tests::leaks`).
    pub fn assert_redacted(&self) {
        let secrets = keyguard_tests::leaks::Secrets::new(ALL).pair(API_KEY, API_SECRET);
        keyguard_tests::leaks::assert_no_leak("stdout", &self.stdout, &secrets);
        keyguard_tests::leaks::assert_no_leak("stderr", &self.stderr, &secrets);
    }
}

pub fn keyguard(args: &[&str], dir: &Path) -> Output {
    keyguard_env(args, dir, &HashMap::new(), None)
}

pub fn keyguard_env(
    args: &[&str],
    dir: &Path,
    env: &HashMap<String, String>,
    stdin: Option<&[u8]>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyguard"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .envs(env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("keyguard runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A git repository in a temporary directory.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("git is installed");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, path: &str, contents: &str) -> PathBuf {
        let p = self.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout))
}

pub fn finding_paths(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["path"].as_str().unwrap(),
                f["ruleId"].as_str().unwrap()
            )
        })
        .collect()
}

/// A zip archive of `members` (name, content).
pub fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, data) in members {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}
