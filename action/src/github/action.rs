//! `keyguard action`: reads the step's inputs (`INPUT_*`) and the event
//! payload (`GITHUB_EVENT_PATH`), scans, writes annotations, the job
//! summary, SARIF and step outputs (`GITHUB_OUTPUT`), and optionally keeps
//! one PR comment up to date.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::report::{write_github, Format};
use crate::run_cli::emit;
use crate::scan::{self, ScanOptions, Target};
use crate::verify::VerifyOptions;
use crate::Error;

/// The environment a runner gives a step.
#[derive(Clone, Default)]
pub struct ActionEnv {
    vars: HashMap<String, String>,
}

/// Names whose values are never shown (tokens, secrets, keys, passwords).
fn is_sensitive(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL", "AUTH"]
        .iter()
        .any(|w| upper.contains(w))
}

/// Only the step's own variables, and never a sensitive value: the whole
/// process environment holds the runner's and the user's secrets.
impl std::fmt::Debug for ActionEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self
            .vars
            .keys()
            .filter(|k| k.starts_with("INPUT_") || k.starts_with("GITHUB_"))
            .collect();
        names.sort();
        let mut map = f.debug_map();
        for name in names {
            if is_sensitive(name) {
                map.entry(name, &"[redacted]");
            } else {
                map.entry(name, &self.vars[name]);
            }
        }
        map.finish()
    }
}

impl ActionEnv {
    pub fn from_process() -> Self {
        ActionEnv {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        ActionEnv { vars }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An input, as the runner names it (`INPUT_FAIL-ON-FINDINGS`) or with
    /// underscores (as a composite action's `env:` may pass it).
    pub fn input(&self, name: &str) -> Option<&str> {
        let upper = name.to_ascii_uppercase();
        self.var(&format!("INPUT_{upper}"))
            .or_else(|| self.var(&format!("INPUT_{}", upper.replace('-', "_"))))
    }

    fn bool_input(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.input(name).map(str::trim) {
            None => Ok(default),
            Some("true" | "True" | "TRUE") => Ok(true),
            Some("false" | "False" | "FALSE") => Ok(false),
            Some(other) => Err(Error::Usage(format!(
                "input `{name}` must be true or false, not {other:?}"
            ))),
        }
    }
}

/// What the event says about the change being checked.
#[derive(Debug, Default, Clone)]
pub struct EventContext {
    pub base: Option<String>,
    pub head: Option<String>,
    pub pull_request: Option<u64>,
    /// Why a push brings no commit to scan (a new branch at a commit
    /// that already exists, a force-push back to an older commit).
    pub nothing_new: Option<&'static str>,
}

pub fn event_context(env: &ActionEnv) -> Result<EventContext, Error> {
    let Some(path) = env.var("GITHUB_EVENT_PATH") else {
        return Ok(EventContext::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading the event payload {path}"),
        source,
    })?;
    let event: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("event payload {path} is not JSON: {e}")))?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    if let Some(pr) = event.get("pull_request") {
        return Ok(EventContext {
            base: s(&pr["base"]["sha"]),
            head: s(&pr["head"]["sha"]),
            pull_request: pr["number"].as_u64().or_else(|| event["number"].as_u64()),
            nothing_new: None,
        });
    }
    Ok(push_context(&event))
}

/// Pure: what a push event asks to scan. `before` is all zeros for a new
/// branch; then the pushed commits (oldest first) start after the parent
/// of the first. A force-push's `before` left the history (a checkout
/// cannot fetch it): its pushed commits are scanned instead.
fn push_context(event: &serde_json::Value) -> EventContext {
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let before = s(&event["before"]).filter(|b| !b.chars().all(|c| c == '0'));
    let new_branch = before.is_none();
    let forced = event["forced"].as_bool().unwrap_or(false);
    let commits = event["commits"].as_array();
    let first_pushed = commits
        .and_then(|c| c.first())
        .and_then(|c| c["id"].as_str())
        .map(|id| format!("{id}^"));
    let no_commits = commits.is_some_and(|c| c.is_empty());
    let nothing_new = match (no_commits, new_branch, forced) {
        (true, true, _) => Some("the push creates a branch at a commit that is already in the repository: it adds no commit"),
        (true, false, true) => Some("the force-push moves the branch back to a commit that is already in the repository: it adds no commit"),
        _ => None,
    };
    let base = match (nothing_new, forced) {
        (Some(_), _) => None,
        (None, true) => first_pushed.or(before),
        (None, false) => before.or(first_pushed),
    };
    EventContext {
        base,
        head: s(&event["after"]),
        pull_request: None,
        nothing_new,
    }
}

pub fn run_from_env() -> anyhow::Result<i32> {
    Ok(run(&ActionEnv::from_process())?)
}

/// Runs the action; returns the exit code.
pub fn run(env: &ActionEnv) -> Result<i32, Error> {
    if env.var("RUNNER_DEBUG") == Some("1") {
        // The runner's "debug logging": every library's TRACE on stderr.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
        println!("::debug::keyguard action environment: {env:?}");
    }
    let sarif = PathBuf::from(env.input("sarif-file").unwrap_or("keyguard.sarif"));
    match run_step(env, &sarif) {
        Ok(code) => Ok(code),
        Err(e) => {
            report_failure(env, &sarif, &e);
            Err(e)
        }
    }
}

/// A step that could not scan still leaves what later steps expect: an
/// `::error` annotation, a SARIF file that says the run failed (so
/// `upload-sarif` with `if: always()` works), and the outputs.
fn report_failure(env: &ActionEnv, sarif: &std::path::Path, e: &Error) {
    println!(
        "::error title=keyguard::{}",
        crate::report::escape_data(&e.to_string())
    );
    let failed = crate::report::failed_sarif(&e.to_string());
    if let Ok(text) = serde_json::to_string_pretty(&failed) {
        let _ = std::fs::write(sarif, text);
    }
    if let Some(out) = env.var("GITHUB_OUTPUT") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
        {
            let _ = writeln!(
                file,
                "findings=0\nclean=false\nsarif-file={}\nerror=true",
                sarif.display()
            );
        }
    }
}

/// Pure: `path` as annotations and SARIF need it, relative to the
/// repository root (the workspace), with a trailing `/`; empty at the root.
fn relative_to_workspace(path: &std::path::Path, workspace: &str) -> Option<String> {
    let rel = match path.strip_prefix(workspace) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) if path.is_relative() => path.to_path_buf(),
        Err(_) => return None,
    };
    let text = rel.to_string_lossy().replace('\\', "/");
    let text = text.trim_start_matches("./").trim_end_matches('/');
    Some(match text {
        "" | "." => String::new(),
        t if path.is_dir() => format!("{t}/"),
        _ => return None,
    })
}

/// The scan the step's inputs and event ask for.
fn scan_options(env: &ActionEnv, event: &EventContext) -> Result<ScanOptions, Error> {
    let workspace = env.var("GITHUB_WORKSPACE").unwrap_or(".");
    let path = PathBuf::from(env.input("path").unwrap_or(workspace));
    let mut opts = ScanOptions::new(target(env, event, &path)?);
    opts.display_prefix = relative_to_workspace(&path, workspace);
    opts.baseline = env.input("baseline").map(PathBuf::from);
    opts.known = env.input("known-fingerprints").map(PathBuf::from);
    opts.allow_new_inline_waivers = env.bool_input("allow-new-inline-waivers", true)?;
    opts.commit_messages = env.bool_input("commit-messages", false)?;
    opts.unreachable = env.bool_input("unreachable", false)?;
    if opts.unreachable && !matches!(opts.target, Target::History(_)) {
        return Err(Error::Usage(
            "input `unreachable` needs `mode: history`".into(),
        ));
    }
    if env.bool_input("verify", false)? {
        opts.verify = Some(VerifyOptions {
            base_url: env
                .input("x-api-base")
                .unwrap_or("https://api.x.com")
                .to_string(),
            timeout: Duration::from_secs(10),
            // An Action run never writes at X.
            consumer_keys: false,
        });
    }
    Ok(opts)
}

/// What `mode` scans: default `pr` on pull requests, `tree` otherwise.
fn target(env: &ActionEnv, event: &EventContext, path: &std::path::Path) -> Result<Target, Error> {
    let default = if event.pull_request.is_some() {
        "pr"
    } else {
        "tree"
    };
    let path = path.to_path_buf();
    match env.input("mode").unwrap_or(default) {
        "tree" => Ok(Target::Tree(vec![path])),
        "history" => Ok(Target::History(path)),
        "pr" | "range" => {
            let base = env.input("base").map(str::to_string).or(event.base.clone());
            let head = env
                .input("head")
                .map(str::to_string)
                .or(event.head.clone())
                .unwrap_or_else(|| "HEAD".into());
            match base {
                Some(base) => Ok(Target::Range(path, format!("{base}..{head}"))),
                // Nothing to scan, said; an empty range reports it clean.
                None if env.input("base").is_none() && event.nothing_new.is_some() => {
                    let why = event.nothing_new.unwrap_or_default();
                    println!("::notice title=keyguard::{why}; nothing new to scan");
                    Ok(Target::Range(path, "HEAD..HEAD".into()))
                }
                None => Err(Error::Usage(
                    "mode `pr` needs a base commit: run on a pull_request or push event, or set the `base` input".into(),
                )),
            }
        }
        other => Err(Error::Usage(format!(
            "input `mode` must be tree, history or pr, not {other:?}"
        ))),
    }
}

/// Reads the inputs and the event, scans, reports; the exit code.
fn run_step(env: &ActionEnv, sarif: &std::path::Path) -> Result<i32, Error> {
    let event = event_context(env)?;
    let opts = scan_options(env, &event)?;
    let fail = env.bool_input("fail-on-findings", true)?;
    let comment = env.bool_input("comment", false)?;

    let report = scan::run(&opts)?;
    let json_path = write_reports(&report, sarif)?;
    if let Some(out) = env.var("GITHUB_OUTPUT") {
        write_outputs(out, &report, sarif, &json_path)?;
    }
    if comment {
        comment_on_pull_request(env, &event, &report)?;
    }
    Ok(report.exit_code(fail))
}

/// Annotations on stdout, the JSON report beside the SARIF file, SARIF
/// and the job summary; the JSON report's path.
fn write_reports(
    report: &crate::report::Report,
    sarif: &std::path::Path,
) -> Result<std::path::PathBuf, Error> {
    let mut annotations = Vec::new();
    write_github(report, &mut annotations).map_err(|source| Error::Io {
        what: "writing annotations".into(),
        source,
    })?;
    std::io::stdout().write_all(&annotations).ok();
    let mut sink = Vec::new();
    crate::report::write(report, Format::Json, &mut sink).ok();
    let json_path = crate::report::json_beside(sarif);
    std::fs::write(&json_path, &sink).map_err(|source| Error::Io {
        what: format!("writing {}", json_path.display()),
        source,
    })?;
    emit_files(report, sarif)?;
    Ok(json_path)
}

/// The step's outputs, appended to `$GITHUB_OUTPUT`.
fn write_outputs(
    out: &str,
    report: &crate::report::Report,
    sarif: &std::path::Path,
    json_path: &std::path::Path,
) -> Result<(), Error> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|source| Error::Io {
            what: "opening $GITHUB_OUTPUT".into(),
            source,
        })?;
    writeln!(
        file,
        "findings={}\nclean={}\nsarif-file={}\nreport-file={}",
        report.findings.len(),
        report.is_clean(),
        sarif.display(),
        json_path.display()
    )
    .map_err(|source| Error::Io {
        what: "writing $GITHUB_OUTPUT".into(),
        source,
    })
}

/// The optional pull-request comment: however it fails, what was written
/// (SARIF, summary, outputs) stands and the exit code still says whether
/// credentials were found; only a missing input is an error.
fn comment_on_pull_request(
    env: &ActionEnv,
    event: &EventContext,
    report: &crate::report::Report,
) -> Result<(), Error> {
    let (number, token, repo) = match (
        event.pull_request,
        env.input("github-token"),
        env.var("GITHUB_REPOSITORY"),
    ) {
        (Some(number), Some(token), Some(repo)) => (number, token, repo),
        (None, _, _) => {
            println!("::notice title=keyguard::not a pull request: no comment");
            return Ok(());
        }
        (_, None, _) => {
            return Err(Error::Usage(
                "`comment: true` needs the `github-token` input (e.g. ${{ github.token }})".into(),
            ))
        }
        (_, _, None) => return Err(Error::Usage("GITHUB_REPOSITORY is not set".into())),
    };
    let api = env
        .var("GITHUB_API_URL")
        .unwrap_or("https://api.github.com");
    let why = match super::comment::sync_comment(api, token, repo, number, report) {
        Ok(()) => return Ok(()),
        Err(Error::GitHubForbidden(why)) => format!("no PR comment: {why}. A pull request from a fork gets a read-only token; the findings are in the annotations and the job summary."),
        Err(e) => format!("no PR comment: {e}; the findings are in the annotations, the SARIF file and the job summary"),
    };
    println!(
        "::warning title=keyguard::{}",
        crate::report::escape_data(&why)
    );
    Ok(())
}

fn emit_files(report: &crate::report::Report, sarif: &std::path::Path) -> Result<(), Error> {
    // The report itself went out as annotations; write SARIF and summary.
    let devnull = std::env::temp_dir().join(format!("keyguard-{}.txt", std::process::id()));
    let result = emit(report, Format::Text, Some(&devnull), Some(sarif));
    let _ = std::fs::remove_file(devnull);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ZERO: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn a_push_event_says_what_to_scan() {
        let cases = [
            (
                "an ordinary push: from before",
                json!({"before": "b1", "after": "a1", "commits": [{"id": "c1"}]}),
                Some("b1"),
                false,
            ),
            (
                "a new branch: after the first pushed commit's parent",
                json!({"before": ZERO, "after": "a1", "commits": [{"id": "c1"}, {"id": "a1"}]}),
                Some("c1^"),
                false,
            ),
            (
                "a force-push: its pushed commits, not the lost before",
                json!({"before": "gone", "after": "a1", "forced": true, "commits": [{"id": "c1"}]}),
                Some("c1^"),
                false,
            ),
            (
                "a new branch at an existing commit: nothing new",
                json!({"before": ZERO, "after": "a1", "commits": []}),
                None,
                true,
            ),
            (
                "a force-push back to an older commit: nothing new",
                json!({"before": "gone", "after": "a1", "forced": true, "commits": []}),
                None,
                true,
            ),
        ];
        for (what, event, base, nothing_new) in cases {
            let context = push_context(&event);
            assert_eq!(context.base.as_deref(), base, "{what}");
            assert_eq!(context.nothing_new.is_some(), nothing_new, "{what}");
            assert_eq!(context.head.as_deref(), Some("a1"), "{what}");
        }
    }
}
