//! `keyguard action` run the way a runner runs a step: INPUT_* variables,
//! GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and a pull_request payload in
//! GITHUB_EVENT_PATH, against a local stand-in for the GitHub API.

use std::collections::HashMap;

use crate::support::github_api;
use crate::support::*;

struct Step {
    env: HashMap<String, String>,
    output: std::path::PathBuf,
    summary: std::path::PathBuf,
    sarif: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn pull_request_step(repo: &Repo, api: &str, base: &str, head: &str) -> Step {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({
            "action": "synchronize",
            "number": 7,
            "pull_request": {"number": 7, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "pr"}},
            "repository": {"full_name": "acme/bot"}
        })
        .to_string(),
    )
    .unwrap();
    let output = dir.path().join("output");
    let summary = dir.path().join("summary.md");
    let sarif = dir.path().join("keyguard.sarif");
    let env: HashMap<String, String> = [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_EVENT_NAME", "pull_request".to_string()),
        ("GITHUB_EVENT_PATH", event.display().to_string()),
        ("GITHUB_OUTPUT", output.display().to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ("GITHUB_REPOSITORY", "acme/bot".to_string()),
        ("GITHUB_API_URL", api.to_string()),
        ("GITHUB_WORKSPACE", repo.path().display().to_string()),
        // Named as the runner names inputs: upper case, hyphens kept.
        ("INPUT_COMMENT", "true".to_string()),
        ("INPUT_GITHUB-TOKEN", "ghs_standintoken".to_string()),
        ("INPUT_SARIF-FILE", sarif.display().to_string()),
        ("INPUT_FAIL-ON-FINDINGS", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Step {
        env,
        output,
        summary,
        sarif,
        _dir: dir,
    }
}

async fn run_step(repo: &Repo, step: &Step) -> Output {
    let (path, env) = (repo.path().to_path_buf(), step.env.clone());
    tokio::task::spawn_blocking(move || keyguard_env(&["action"], &path, &env, None))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_gets_one_comment_updated_then_removed_when_clean() {
    let (api, recorded) = github_api::start().await;
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.write("deploy/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    let head = repo.commit("add deploy env");

    // First run: findings, a new comment.
    let step = pull_request_step(&repo, &api, &base, &head);
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    assert!(
        out.stdout.contains("::error file=deploy/.env,line=1,"),
        "{}",
        out.stdout
    );
    let outputs = std::fs::read_to_string(&step.output).unwrap();
    assert!(outputs.contains("findings=1\n"), "{outputs}");
    assert!(
        outputs.contains(&format!("sarif-file={}", step.sarif.display())),
        "{outputs}"
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&step.sarif).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);
    let summary = std::fs::read_to_string(&step.summary).unwrap();
    assert!(
        summary.contains("1 X (Twitter) credential(s) found"),
        "{summary}"
    );
    {
        let r = recorded.lock().unwrap();
        assert_eq!(r.comments.len(), 1, "{:?}", r.calls);
        assert!(r.comments[0].2.contains("deploy/.env"));
        assert!(
            !r.comments[0].2.contains(BEARER),
            "the comment leaks the value"
        );
        assert!(
            r.calls
                .contains(&"POST /repos/acme/bot/issues/7/comments".to_string()),
            "{:?}",
            r.calls
        );
        assert!(
            !r.auth_headers.is_empty()
                && r.auth_headers
                    .iter()
                    .all(|h| h.ends_with("ghs_standintoken")),
            "{:?}",
            r.auth_headers
        );
    }

    // Second run on the same PR: the same comment is updated, not duplicated.
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    {
        let r = recorded.lock().unwrap();
        assert_eq!(r.comments.len(), 1, "{:?}", r.calls);
        let creates = r
            .calls
            .iter()
            .filter(|c| *c == "POST /repos/acme/bot/issues/7/comments")
            .count();
        let updates = r
            .calls
            .iter()
            .filter(|c| {
                c.starts_with("POST /repos/acme/bot/issues/comments/")
                    || c.starts_with("PATCH /repos/acme/bot/issues/comments/")
            })
            .count();
        assert_eq!((creates, updates), (1, 1), "{:?}", r.calls);
    }

    // The author force-pushes a clean branch: the comment goes away.
    repo.git(&["reset", "-q", "--hard", &base]);
    repo.write(
        "deploy/.env",
        "TWITTER_BEARER_TOKEN=${{ secrets.TWITTER_BEARER_TOKEN }}\n",
    );
    let clean_head = repo.commit("read the token from secrets");
    let step = pull_request_step(&repo, &api, &base, &clean_head);
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(std::fs::read_to_string(&step.output)
        .unwrap()
        .contains("findings=0\n"));
    let r = recorded.lock().unwrap();
    assert!(r.comments.is_empty(), "{:?}", r.calls);
    assert!(
        r.calls
            .iter()
            .any(|c| c.starts_with("DELETE /repos/acme/bot/issues/comments/")),
        "{:?}",
        r.calls
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_mode_without_failing_and_bad_inputs() {
    let (api, recorded) = github_api::start().await;
    let repo = Repo::new();
    repo.write(
        "bot.py",
        &format!("consumer_key = \"{API_KEY}\"\nconsumer_secret = \"{API_SECRET}\"\n"),
    );
    repo.commit("bot");
    let mut step = pull_request_step(&repo, &api, "unused", "unused");
    step.env.insert("GITHUB_EVENT_NAME".into(), "push".into());
    std::fs::write(
        &step.env["GITHUB_EVENT_PATH"],
        r#"{"before":"0000000000000000000000000000000000000000","after":"abc","commits":[]}"#,
    )
    .unwrap();
    step.env.insert("INPUT_MODE".into(), "tree".into());
    step.env
        .insert("INPUT_FAIL-ON-FINDINGS".into(), "false".into());
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 0, "fail-on-findings: false: {}", out.stderr);
    assert!(std::fs::read_to_string(&step.output)
        .unwrap()
        .contains("findings=2\n"));
    assert!(
        out.stdout.contains("not a pull request: no comment"),
        "{}",
        out.stdout
    );
    assert!(recorded.lock().unwrap().calls.is_empty());

    step.env
        .insert("INPUT_FAIL-ON-FINDINGS".into(), "maybe".into());
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("`fail-on-findings` must be true or false"),
        "{}",
        out.stderr
    );

    step.env
        .insert("INPUT_FAIL-ON-FINDINGS".into(), "true".into());
    step.env.insert("INPUT_MODE".into(), "pr".into());
    // An event that names no base and no pushed commits (a push that adds
    // none is clean instead: see a_force_push_scans_its_pushed_commits…).
    std::fs::write(&step.env["GITHUB_EVENT_PATH"], r#"{"after":"abc"}"#).unwrap();
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 2, "pr mode with no base to compare with");
    assert!(out.stderr.contains("needs a base commit"), "{}", out.stderr);
    // What later steps need is there anyway: the annotation, the outputs,
    // and SARIF that says the run failed.
    assert!(
        out.stdout.contains("::error title=keyguard::")
            && out.stdout.contains("needs a base commit"),
        "{}",
        out.stdout
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&step.sarif).unwrap()).unwrap();
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false, "{sarif}");
    assert!(
        invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("needs a base commit")
    );
    let outputs = std::fs::read_to_string(&step.output).unwrap();
    assert!(outputs.ends_with("error=true\n"), "{outputs}");
}

/// SARIF named `*.json` and the JSON report never overwrite each other;
/// URIs are percent-encoded and regions have an end.
#[tokio::test(flavor = "multi_thread")]
async fn sarif_named_json_keeps_both_reports_and_encodes_uris() {
    let (api, _) = github_api::start().await;
    let repo = Repo::new();
    repo.write("my bot/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.commit("bot");
    let mut step = pull_request_step(&repo, &api, "unused", "unused");
    let sarif = step.sarif.with_file_name("results.json");
    step.env
        .insert("INPUT_SARIF-FILE".into(), sarif.display().to_string());
    step.env.insert("INPUT_MODE".into(), "tree".into());
    step.env.insert("INPUT_COMMENT".into(), "false".into());
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let location = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "my%20bot/.env");
    assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(
        location["region"]["endColumn"].as_u64().unwrap()
            - location["region"]["startColumn"].as_u64().unwrap(),
        BEARER.len() as u64
    );
    assert!(sarif["runs"][0]["originalUriBaseIds"].is_null());
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        true
    );
    let report = step.sarif.with_file_name("results.report.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(report["tool"], "keyguard");
}

#[test]
fn action_yml_passes_every_input_to_the_binary() {
    let yml: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap(),
    )
    .unwrap();
    let inputs = yml["inputs"].as_mapping().unwrap();
    let scan = yml["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "scan")
        .unwrap();
    let env = scan["env"].as_mapping().unwrap();
    // `install-only` decides whether the scan step runs at all.
    let condition = scan["if"].as_str().unwrap_or_default();
    assert_eq!(condition, "inputs.install-only != 'true'");
    for name in inputs.keys().map(|k| k.as_str().unwrap()) {
        if condition.contains(&format!("inputs.{name} ")) {
            continue;
        }
        let var = format!("INPUT_{}", name.to_ascii_uppercase().replace('-', "_"));
        let value = env
            .get(var.as_str())
            .unwrap_or_else(|| panic!("input {name} is not passed as {var}"));
        assert_eq!(value.as_str().unwrap(), format!("${{{{ inputs.{name} }}}}"));
    }
    for output in ["findings", "clean", "sarif-file", "report-file"] {
        assert!(yml["outputs"][output]["value"]
            .as_str()
            .unwrap()
            .contains(output));
    }
    assert!(yml["branding"]["icon"].is_string());
}

/// The repository's root action.yml (what the Marketplace lists) is the
/// same action, finding install.sh from the root.
#[test]
fn the_root_action_yml_is_the_same_action() {
    let read = |p: &str| std::fs::read_to_string(keyguard_tests::repo_root().join(p)).unwrap();
    let sub = read("action/action.yml");
    let root = read("action.yml");
    let root_body: String = root
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let expected = sub.replace(
        r#""$GITHUB_ACTION_PATH/install.sh""#,
        r#""$GITHUB_ACTION_PATH/action/install.sh""#,
    );
    assert_ne!(sub, expected, "action/action.yml runs install.sh");
    assert_eq!(
        root_body, expected,
        "regenerate action.yml from action/action.yml"
    );
}

/// With the runner's debug logging on (every library at TRACE, the step's
/// environment printed), the GitHub token still appears nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn debug_logging_never_shows_the_github_token() {
    let (api, recorded) = github_api::start().await;
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.write("deploy/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    let head = repo.commit("add deploy env");
    let mut step = pull_request_step(&repo, &api, &base, &head);
    let token = "ghs_debugloggingtokenvalue0123456789";
    step.env.insert("INPUT_GITHUB-TOKEN".into(), token.into());
    step.env.insert("RUNNER_DEBUG".into(), "1".into());
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("::debug::keyguard action environment"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("INPUT_GITHUB-TOKEN"),
        "the variable is named: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("TRACE"),
        "library traces were on: {}",
        out.stderr
    );
    assert_eq!(
        recorded.lock().unwrap().comments.len(),
        1,
        "the token was used"
    );
    let secrets = keyguard_tests::leaks::Secrets::new([token, BEARER]);
    keyguard_tests::leaks::assert_no_leak("stdout", &out.stdout, &secrets);
    keyguard_tests::leaks::assert_no_leak("stderr", &out.stderr, &secrets);
}

/// A pull request that adds a bearer token, scanned as the Action runs
/// it against `api`; the comment is expected to fail with a warning while
/// the findings still fail the step (exit 1).
async fn leaky_pull_request_with_a_failing_comment(api: &str) -> (Repo, String, Step, Output) {
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.write("deploy/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    let head = repo.commit("add deploy env");
    let step = pull_request_step(&repo, api, &base, &head);
    let out = run_step(&repo, &step).await;
    assert_eq!(
        out.code, 1,
        "findings still fail: {}\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout
            .contains("::warning title=keyguard::no PR comment"),
        "{}",
        out.stdout
    );
    (repo, base, step, out)
}

/// A pull request from a fork gets a read-only token: the comment is
/// refused with 403, which is a warning; the exit code still says whether
/// credentials were found.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_token_is_a_warning_and_keeps_the_exit_code() {
    let (api, recorded) = github_api::start().await;
    recorded.lock().unwrap().read_only = true;
    let (repo, base, step, out) = leaky_pull_request_with_a_failing_comment(&api).await;
    assert!(out.stdout.contains("403"), "{}", out.stdout);
    assert!(std::fs::read_to_string(&step.output)
        .unwrap()
        .contains("findings=1\n"));

    // And a clean pull request stays clean.
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["checkout", "-q", "-b", "pr2"]);
    repo.write("docs.md", "docs\n");
    let clean_head = repo.commit("docs");
    let clean_base = base;
    // An earlier comment the clean run would delete: that write is refused.
    recorded.lock().unwrap().comments.push((
        5,
        7,
        format!("{}\nold findings", keyguard_scan::report::COMMENT_MARKER),
    ));
    let step = pull_request_step(&repo, &api, &clean_base, &clean_head);
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("::warning title=keyguard::no PR comment"),
        "{}",
        out.stdout
    );
    assert!(recorded
        .lock()
        .unwrap()
        .calls
        .contains(&"DELETE /repos/acme/bot/issues/comments/5".to_string()));
}

/// A GitHub outage on the optional comment (a 500, a body that is no
/// comment) is a warning: the SARIF file, the outputs and the exit code
/// written for the findings stand (it once replaced them with an empty,
/// "failed" SARIF and `findings=0`, which closes open code-scanning alerts).
#[tokio::test(flavor = "multi_thread")]
async fn a_comment_api_error_never_touches_the_report() {
    let (api, recorded) = github_api::start().await;
    recorded.lock().unwrap().broken = true;
    let (_repo, _base, step, _out) = leaky_pull_request_with_a_failing_comment(&api).await;
    let outputs = std::fs::read_to_string(&step.output).unwrap();
    assert!(outputs.contains("findings=1\n"), "{outputs}");
    assert!(!outputs.contains("error=true"), "{outputs}");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&step.sarif).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        1,
        "the finding stays in the SARIF file: {sarif}"
    );
}

/// A push that creates a branch (`before` all zeros) scans the pushed
/// commits, not the branch's whole past.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_branch_push_scans_the_pushed_commits() {
    let (api, _) = github_api::start().await;
    let repo = Repo::new();
    repo.write(
        "legacy.py",
        &format!("consumer_key = \"{API_KEY}\"\nconsumer_secret = \"{API_SECRET}\"\n"),
    );
    repo.commit("old, already reported");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write(".env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    let first = repo.commit("add env");
    repo.write("README.md", "feature\n");
    let head = repo.commit("docs");
    let mut step = pull_request_step(&repo, &api, "unused", "unused");
    step.env.insert("GITHUB_EVENT_NAME".into(), "push".into());
    std::fs::write(
        &step.env["GITHUB_EVENT_PATH"],
        serde_json::json!({
            "before": "0000000000000000000000000000000000000000",
            "after": head,
            "commits": [{"id": first}, {"id": head}]
        })
        .to_string(),
    )
    .unwrap();
    step.env.insert("INPUT_MODE".into(), "pr".into());
    step.env.insert("INPUT_COMMENT".into(), "false".into());
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("::error file=.env,line=1,"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("legacy.py"), "{}", out.stdout);
}

/// A force-push whose old head no clone can fetch scans the pushed
/// commits; a push that adds no commit says so and is clean.
#[tokio::test(flavor = "multi_thread")]
async fn a_force_push_scans_its_pushed_commits_and_an_empty_push_says_why() {
    let (api, _) = github_api::start().await;
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write(".env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    let rewritten = repo.commit("add env, rewritten");
    let push = |event: serde_json::Value| {
        let mut step = pull_request_step(&repo, &api, "unused", "unused");
        step.env.insert("GITHUB_EVENT_NAME".into(), "push".into());
        std::fs::write(&step.env["GITHUB_EVENT_PATH"], event.to_string()).unwrap();
        step.env.insert("INPUT_MODE".into(), "pr".into());
        step.env.insert("INPUT_COMMENT".into(), "false".into());
        step
    };
    let lost = "1234567890123456789012345678901234567890";
    let step = push(
        serde_json::json!({"before": lost, "after": rewritten, "forced": true,
        "commits": [{"id": rewritten}]}),
    );
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("::error file=.env,line=1,"),
        "{}",
        out.stdout
    );

    let step = push(
        serde_json::json!({"before": "0000000000000000000000000000000000000000",
        "after": base, "commits": []}),
    );
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("it adds no commit; nothing new to scan"),
        "{}",
        out.stdout
    );
}

/// `path:` a subdirectory: annotations and SARIF name files from the
/// repository root.
#[tokio::test(flavor = "multi_thread")]
async fn a_subdirectory_path_reports_paths_from_the_repository_root() {
    let (api, _) = github_api::start().await;
    let repo = Repo::new();
    repo.write("svc/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    repo.commit("svc");
    let mut step = pull_request_step(&repo, &api, "unused", "unused");
    step.env.insert("INPUT_MODE".into(), "tree".into());
    step.env.insert("INPUT_COMMENT".into(), "false".into());
    step.env.insert(
        "INPUT_PATH".into(),
        repo.path().join("svc").display().to_string(),
    );
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("::error file=svc/.env,line=1,"),
        "{}",
        out.stdout
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&step.sarif).unwrap()).unwrap();
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"],
        "svc/.env"
    );
}

/// `commit-messages: true` in pr mode: a credential pasted into a commit
/// message of the pull request fails it; without the input it is not read.
#[tokio::test(flavor = "multi_thread")]
async fn commit_messages_of_the_pull_request_are_scanned_on_request() {
    let (api, _) = github_api::start().await;
    let repo = Repo::new();
    repo.write("README.md", "bot\n");
    let base = repo.commit("base");
    repo.write("README.md", "bot, faster\n");
    repo.git(&["add", "README.md"]);
    repo.git(&["commit", "-q", "-m", &format!("debug: bearer is {BEARER}")]);
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let mut step = pull_request_step(&repo, &api, &base, &head);
    step.env.insert("INPUT_COMMENT".into(), "false".into());

    let quiet = run_step(&repo, &step).await;
    assert_eq!(quiet.code, 0, "{}\n{}", quiet.stdout, quiet.stderr);

    step.env
        .insert("INPUT_COMMIT-MESSAGES".into(), "true".into());
    let out = run_step(&repo, &step).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("(message)"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(BEARER),
        "the value stays out of the log"
    );

    step.env.insert("INPUT_UNREACHABLE".into(), "true".into());
    let refused = run_step(&repo, &step).await;
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stdout
            .contains("`unreachable` needs `mode: history`"),
        "{}",
        refused.stdout
    );
}
