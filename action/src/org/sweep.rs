//! Clones and scans the repositories of a sweep, several at once: each a
//! fresh clone (the default branch at depth 1, or a mirror for history) in
//! its own directory, removed when its scan is done.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::json;

use super::listing::Repository;
use super::report::{provenance, Mode, Row, Status};
use super::state;
use crate::detect::Detector;
use crate::report::Report;
use crate::scan::{self, ScanOptions, Target};

/// How to clone and scan.
pub struct Sweeper<'a> {
    pub mode: Mode,
    /// Every scan's options; the target is each clone.
    pub scan: &'a ScanOptions,
    /// Built once for every repository.
    pub detector: &'a Detector,
    pub api: &'a str,
    pub token: Option<&'a str>,
    pub jobs: usize,
    pub work_dir: PathBuf,
    pub state: Option<&'a state::Writer>,
}

impl Sweeper<'_> {
    /// One row per repository, in the order they finish.
    pub fn sweep(&self, repos: &[Repository]) -> Vec<Row> {
        let next = AtomicUsize::new(0);
        let finished = AtomicUsize::new(0);
        let rows = Mutex::new(Vec::with_capacity(repos.len()));
        std::thread::scope(|s| {
            for _ in 0..self.jobs.clamp(1, repos.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(repo) = repos.get(i) else { break };
                    let row = self.one(repo, &self.work_dir.join(i.to_string()));
                    self.keep(&row);
                    let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(100) || n == repos.len() {
                        eprintln!("keyguard: {n}/{} repositories scanned", repos.len());
                    }
                    rows.lock().unwrap_or_else(|e| e.into_inner()).push(row);
                });
            }
        });
        rows.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, row: &Row) {
        if let Some(state) = self.state {
            if let Err(e) = state.append(row) {
                eprintln!(
                    "keyguard: warning: the state file lost {}'s row ({e}); a rerun scans it again",
                    row.repository
                );
            }
        }
    }

    /// Clones `repo` into `dir`, scans it, removes it.
    fn one(&self, repo: &Repository, dir: &Path) -> Row {
        let _ = std::fs::remove_dir_all(dir);
        let outcome = clone_url(self.api, repo)
            .and_then(|url| self.clone(&url, dir))
            .and_then(|revision| self.scan(dir).map(|report| (report, revision)));
        let _ = std::fs::remove_dir_all(dir);
        match outcome {
            Ok((report, revision)) => row_of(repo, &report, revision),
            Err(why) => Row::failed(&repo.full_name, &repo.html_url, repo.pushed_at.clone(), why),
        }
    }

    /// Clones into `dir`; the commit scanned in tree mode.
    fn clone(&self, url: &str, dir: &Path) -> Result<Option<String>, String> {
        let mut cmd = Command::new("git");
        // No prompt, no protocol but the listing's, no redirect (the token
        // stays with the host it was meant for), no trace of the request
        // headers in the error text a row keeps.
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", allowed_protocols(self.api))
            .env("GIT_TRACE_REDACT", "1")
            .env_remove("GIT_TRACE")
            .env_remove("GIT_TRACE_CURL")
            .env_remove("GIT_CURL_VERBOSE")
            .env_remove("GIT_TRACE_PACKET")
            .args([
                "-c",
                "http.followRedirects=false",
                "-c",
                "credential.helper=",
            ])
            .args(["clone", "--quiet"]);
        match self.mode {
            Mode::Tree => cmd.args(["--depth", "1", "--no-tags", "--single-branch"]),
            Mode::History => cmd.arg("--mirror"),
        };
        let host = https_host(url).filter(|host| is_api_git_host(self.api, host));
        if let (Some(token), Some(host)) = (self.token, host) {
            // In the environment, never on the command line (which other
            // users of the machine can read), and only for the API's host.
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env(
                    "GIT_CONFIG_KEY_0",
                    format!("http.https://{host}/.extraHeader"),
                )
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        let out = cmd
            .arg("--")
            .arg(url)
            .arg(dir)
            .output()
            .map_err(|e| format!("git clone could not run: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("git clone failed: {}", stderr.trim()));
        }
        Ok(match self.mode {
            Mode::Tree => head(dir),
            Mode::History => None,
        })
    }

    fn scan(&self, dir: &Path) -> Result<Report, String> {
        let mut opts = self.scan.clone();
        opts.target = match self.mode {
            Mode::Tree => Target::Tree(vec![dir.to_path_buf()]),
            Mode::History => Target::History(dir.to_path_buf()),
        };
        if self.mode == Mode::History && opts.ignore_file.is_none() && !opts.no_ignore {
            // A mirror has no working tree: the repository's waivers are
            // its default branch's, as a scan of its checkout reads them.
            opts.ignore_file = ignore_file_at_head(dir)?;
        }
        opts.display_prefix = Some(String::new());
        // A repository's symbolic links point into the machine running the
        // sweep, not into the repository.
        opts.follow_links = false;
        opts.threads = (self.scan.threads / self.jobs.max(1)).max(1);
        scan::run_with(&opts, self.detector).map_err(|e| format!("the scan could not run: {e}"))
    }
}

/// The default branch's `.keyguardignore`, copied beside the mirror.
fn ignore_file_at_head(mirror: &Path) -> Result<Option<PathBuf>, String> {
    let out = Command::new("git")
        .args([
            "show",
            &format!("HEAD:{}", crate::waivers::IGNORE_FILE_NAME),
        ])
        .current_dir(mirror)
        .output()
        .map_err(|e| format!("git show could not run: {e}"))?;
    if !out.status.success() {
        return Ok(None);
    }
    let file = mirror.join("keyguard-waivers");
    std::fs::write(&file, &out.stdout).map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(Some(file))
}

fn head(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Pure: one repository's row from its scan.
pub fn row_of(repo: &Repository, report: &Report, revision: Option<String>) -> Row {
    let findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut record = serde_json::to_value(f.record()).unwrap_or_default();
            record["message"] = json!(f.message());
            record
        })
        .collect();
    let status = match (report.incomplete.is_empty(), findings.is_empty()) {
        (false, _) => Status::Incomplete,
        (true, true) => Status::Clean,
        (true, false) => Status::Found,
    };
    let sarif_run = (status != Status::Clean).then(|| {
        let mut run = crate::report::to_sarif(report)["runs"][0].take();
        provenance(&mut run, &repo.html_url, revision.as_deref());
        run
    });
    Row {
        repository: repo.full_name.clone(),
        url: repo.html_url.clone(),
        pushed_at: repo.pushed_at.clone(),
        revision,
        status,
        findings,
        ignored: report.ignored,
        warnings: report.warnings.clone(),
        incomplete: report.incomplete.clone(),
        error: None,
        sarif_run,
    }
}

/// Pure: whether the API is a loopback stand-in (GitHub Enterprise and
/// github.com are reached over https).
fn is_loopback(api: &str) -> bool {
    let rest = api.split_once("://").map_or(api, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host == "127.0.0.1" || rest.starts_with("[::1]")
}

fn allowed_protocols(api: &str) -> &'static str {
    if is_loopback(api) {
        "https:http:file"
    } else {
        "https"
    }
}

/// Pure: whether `host` serves the git repositories of the API at `api`
/// (github.com for api.github.com; the same host for GitHub Enterprise's
/// `https://HOST/api/v3`). The token goes nowhere else.
fn is_api_git_host(api: &str, host: &str) -> bool {
    let api_host = https_host(api).unwrap_or_default();
    api_host.eq_ignore_ascii_case(host)
        || api_host
            .strip_prefix("api.")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

fn https_host(url: &str) -> Option<&str> {
    url.strip_prefix("https://")?.split('/').next()
}

/// Pure: the URL to clone. GitHub answers https clone URLs; anything else
/// is refused unless the API itself is local (a stand-in serving local
/// repositories), so a listing cannot point the sweep at `ext::` commands
/// or at the machine's own files.
pub fn clone_url(api: &str, repo: &Repository) -> Result<String, String> {
    let url = repo.clone_url.as_str();
    let scheme_ok = url.starts_with("https://")
        || (is_loopback(api) && (url.starts_with("http://") || url.starts_with("file://")));
    if scheme_ok {
        Ok(url.to_string())
    } else {
        Err(format!(
            "clone URL {url:?} refused: only https:// is cloned"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(clone_url: &str) -> Repository {
        Repository {
            full_name: "acme/bot".into(),
            archived: false,
            fork: false,
            disabled: false,
            pushed_at: None,
            clone_url: clone_url.into(),
            html_url: String::new(),
        }
    }

    #[test]
    fn only_https_is_cloned_unless_the_api_is_a_local_stand_in() {
        let cases = [
            (
                "https://api.github.com",
                "https://github.com/acme/bot.git",
                true,
            ),
            (
                "https://api.github.com",
                "http://github.com/acme/bot.git",
                false,
            ),
            ("https://api.github.com", "file:///etc", false),
            ("https://api.github.com", "ext::sh -c touch% /tmp/x", false),
            (
                "https://ghe.example/api/v3",
                "https://ghe.example/acme/bot.git",
                true,
            ),
            ("http://127.0.0.1:8080", "file:///tmp/repos/bot.git", true),
            (
                "http://localhost:8080",
                "http://localhost:8080/acme/bot.git",
                true,
            ),
            ("http://127.0.0.1.evil.example", "file:///etc", false),
        ];
        for (api, url, ok) in cases {
            assert_eq!(clone_url(api, &repo(url)).is_ok(), ok, "{api} {url}");
        }
    }

    #[test]
    fn the_token_goes_only_to_an_https_host() {
        assert_eq!(
            https_host("https://github.com/acme/bot.git"),
            Some("github.com")
        );
        assert_eq!(https_host("http://github.com/acme/bot.git"), None);
        assert_eq!(https_host("file:///tmp/bot.git"), None);
    }
}
