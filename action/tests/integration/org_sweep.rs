//! `keyguard scan --github-org`: an organisation's repositories listed from
//! the GitHub API stand-in (1,000 of them, paged, with a secondary rate
//! limit on the way), each cloned and scanned; shards merged into one
//! report; a stopped sweep resumed; a repository that could not be scanned
//! never counted as clean.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::support::github_api::{self, repository_json, Shared};
use crate::support::{keyguard_env, Output, Repo, ACCESS_SECRET, ACCESS_TOKEN, BEARER};

const TOKEN: &str = "ghs_sweeptoken0123456789";

/// The planted repositories; every other one is a copy of a clean one.
struct Fixtures {
    clean: Repo,
    leaky: Repo,
    history_only: Repo,
    waived: Repo,
}

fn fixtures() -> Fixtures {
    let clean = Repo::new();
    clean.write("README.md", "# service\n");
    clean.write(
        "src/app.py",
        "import os\ntoken = os.environ['TWITTER_BEARER_TOKEN']\n",
    );
    clean.commit("service");
    let leaky = Repo::new();
    leaky.write(
        "config/app.env",
        &format!("TWITTER_BEARER_TOKEN={BEARER}\n"),
    );
    leaky.commit("config");
    let history_only = Repo::new();
    history_only.write(
        "bot.py",
        &format!("access_token = \"{ACCESS_TOKEN}\"\naccess_token_secret = \"{ACCESS_SECRET}\"\n"),
    );
    history_only.commit("bot");
    history_only.write("bot.py", "import os\n");
    history_only.commit("read the tokens from the environment");
    let waived = Repo::new();
    waived.write(
        "tests/fixture.env",
        &format!("TWITTER_BEARER_TOKEN={BEARER}\n"),
    );
    waived.write(".keyguardignore", "tests/fixture.env\n");
    waived.commit("fixture, waived by the repository's own ignore file");
    Fixtures {
        clean,
        leaky,
        history_only,
        waived,
    }
}

fn url(repo: &Repo) -> String {
    format!("file://{}", repo.path().display())
}

/// `count` repositories: the planted ones and clean ones, plus an archived
/// and a forked copy of the leak that a sweep leaves out by default.
fn organisation(f: &Fixtures, count: usize) -> Vec<Value> {
    let t = "2026-12-01T00:00:00Z";
    let mut repos = vec![
        repository_json("acme/leaky-config", &url(&f.leaky), t),
        repository_json("acme/history-only", &url(&f.history_only), t),
        repository_json("acme/waived-fixture", &url(&f.waived), t),
    ];
    let mut archived = repository_json("acme/archived-leak", &url(&f.leaky), t);
    archived["archived"] = json!(true);
    let mut fork = repository_json("acme/forked-leak", &url(&f.leaky), t);
    fork["fork"] = json!(true);
    repos.extend([archived, fork]);
    for i in repos.len()..count {
        repos.push(repository_json(
            &format!("acme/service-{i:04}"),
            &url(&f.clean),
            t,
        ));
    }
    repos
}

async fn stand_in(repos: Vec<Value>) -> (String, Shared) {
    let (api, shared) = github_api::start().await;
    {
        let mut s = shared.lock().unwrap();
        s.organisation = "acme".into();
        s.repositories = repos;
    }
    (api, shared)
}

fn sweep(api: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    let env: HashMap<String, String> = [
        ("GITHUB_API_URL".to_string(), api.to_string()),
        ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
    ]
    .into();
    let mut all = vec!["scan", "--github-org", "acme"];
    all.extend(args);
    let out = keyguard_env(&all, dir, &env, None);
    out.assert_redacted();
    assert!(
        !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
        "the token is printed"
    );
    out
}

fn report(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr))
}

/// Each repository's status, and the rule ids of its findings.
fn rows(report: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let rules = row["findings"]
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
                .collect();
            (
                row["repository"].as_str().unwrap().to_string(),
                (row["status"].as_str().unwrap().to_string(), rules),
            )
        })
        .collect()
}

fn not_clean(report: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    rows(report)
        .into_iter()
        .filter(|(_, (status, _))| status != "clean")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_of_1000_repositories_finds_the_planted_leaks_and_only_them() {
    let f = fixtures();
    let (api, shared) = stand_in(organisation(&f, 1000)).await;
    shared.lock().unwrap().rate_limited_pages = vec![(3, 1)];
    let work = tempfile::tempdir().unwrap();

    let out = sweep(&api, work.path(), &["--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let whole = report(&out);
    let found = not_clean(&whole);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["acme/leaky-config"],
        "{found:?}"
    );
    assert_eq!(
        found["acme/leaky-config"].1,
        ["config/app.env:x-bearer-token"]
    );
    assert_eq!(
        whole["summary"]["repositories"], 998,
        "archived and fork left out"
    );
    let waived = &whole["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == "acme/waived-fixture")
        .unwrap();
    assert_eq!(
        (waived["status"].as_str(), waived["ignored"].as_u64()),
        (Some("clean"), Some(1))
    );
    assert!(out.stderr.contains("waiting 1s"), "{}", out.stderr);
    {
        let s = shared.lock().unwrap();
        let page_3 = s
            .calls
            .iter()
            .filter(|c| c.contains("/orgs/acme/repos") && c.contains("page=3"))
            .count();
        assert_eq!(
            page_3, 2,
            "the rate-limited page is asked again: {:?}",
            s.calls
        );
        assert!(
            s.auth_headers.iter().all(|h| h.ends_with(TOKEN)),
            "{:?}",
            s.auth_headers
        );
    }

    // Four shards, as a matrix runs them, merge into the same rows (of a
    // smaller organisation: the split is the shard unit tests' to prove).
    let (api, _) = stand_in(organisation(&f, 200)).await;
    let mut files = Vec::new();
    for index in 1..=4 {
        let file = work.path().join(format!("shard-{index}.json"));
        let shard = format!("{index}/4");
        let out = sweep(
            &api,
            work.path(),
            &[
                "--shard",
                &shard,
                "--format",
                "json",
                "-o",
                file.to_str().unwrap(),
            ],
        );
        assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
        files.push(file.to_str().unwrap().to_string());
    }
    let merge = |files: &[String], extra: &[&str]| {
        let mut args = vec!["merge"];
        args.extend(files.iter().map(String::as_str));
        args.extend(extra);
        keyguard_env(&args, work.path(), &HashMap::new(), None)
    };
    let sarif = work.path().join("org.sarif");
    let merged = merge(
        &files,
        &["--format", "json", "--sarif-file", sarif.to_str().unwrap()],
    );
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    merged.assert_redacted();
    let merged = report(&merged);
    assert_eq!(
        merged["summary"]["repositories"], 198,
        "each repository once"
    );
    assert_eq!(merged["shards"], json!([1, 2, 3, 4]));
    assert_eq!(
        not_clean(&merged).keys().collect::<Vec<_>>(),
        ["acme/leaky-config"]
    );
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "one run per repository with findings");
    assert_eq!(
        runs[0]["versionControlProvenance"][0]["repositoryUri"],
        "https://github.example/acme/leaky-config"
    );

    // A shard left out: the merge refuses to call the organisation scanned.
    let three = merge(&files[..3], &[]);
    assert_eq!(three.code, 2, "{}", three.stdout);
    assert!(
        three.stderr.contains("shard(s) 4 of 4 are missing"),
        "{}",
        three.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_history_sweep_finds_what_only_history_holds() {
    let f = fixtures();
    let (api, _) = stand_in(organisation(&f, 12)).await;
    let work = tempfile::tempdir().unwrap();
    let out = sweep(&api, work.path(), &["--history", "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let found = not_clean(&report(&out));
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["acme/history-only", "acme/leaky-config"],
        "{found:?}"
    );
    // Archived repositories and forks when asked for.
    let all = sweep(
        &api,
        work.path(),
        &["--format", "json", "--include-archived", "--include-forks"],
    );
    assert_eq!(
        not_clean(&report(&all)).keys().collect::<Vec<_>>(),
        [
            "acme/archived-leak",
            "acme/forked-leak",
            "acme/leaky-config"
        ]
    );
    let text = sweep(&api, work.path(), &["--history"]);
    assert!(
        text.stdout.contains("acme/history-only: bot.py:") && text.stdout.contains("in commit"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_sweep_resumes_and_an_unscanned_repository_is_never_clean() {
    let f = fixtures();
    let work = tempfile::tempdir().unwrap();
    let later = work.path().join("later-repo");
    let mut repos = organisation(&f, 10);
    repos.push(repository_json(
        "acme/not-yet",
        &format!("file://{}", later.display()),
        "2026-12-01T00:00:00Z",
    ));
    let (api, shared) = stand_in(repos).await;
    let state = work.path().join("sweep.state");
    let state_arg = state.to_str().unwrap();

    // The clone fails: exit 2 and the row says so, whatever else was found.
    let first = sweep(&api, work.path(), &["--state", state_arg]);
    assert_eq!(first.code, 2, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains("acme/not-yet: error: not scanned: git clone failed"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("1 not scanned"), "{}", first.stdout);

    // The repository appears, another gets a push: only those two are scanned again.
    let fresh = Repo::new();
    fresh.write("deploy/.env", &format!("TWITTER_BEARER_TOKEN={BEARER}\n"));
    fresh.commit("deploy");
    let cloned = std::process::Command::new("git")
        .args([
            "clone",
            "-q",
            fresh.path().to_str().unwrap(),
            later.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(cloned.success());
    {
        let mut s = shared.lock().unwrap();
        let pushed = s
            .repositories
            .iter_mut()
            .find(|r| r["full_name"] == "acme/service-0007")
            .unwrap();
        pushed["pushed_at"] = json!("2026-12-02T00:00:00Z");
    }
    let second = sweep(
        &api,
        work.path(),
        &["--state", state_arg, "--format", "json"],
    );
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("7 from the state file, 2 to scan"),
        "{}",
        second.stderr
    );
    assert_eq!(
        not_clean(&report(&second)).keys().collect::<Vec<_>>(),
        ["acme/leaky-config", "acme/not-yet"]
    );
    let state_text = std::fs::read_to_string(&state).unwrap();
    assert!(
        !state_text.contains(BEARER) && !state_text.contains(TOKEN),
        "the state file holds a value"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_longer_than_allowed_stops_the_sweep_with_a_way_on() {
    let f = fixtures();
    let (api, shared) = stand_in(organisation(&f, 150)).await;
    shared.lock().unwrap().rate_limited_pages = vec![(2, 3600)];
    let work = tempfile::tempdir().unwrap();
    let out = sweep(&api, work.path(), &["--max-rate-limit-wait", "60"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("3601s") || out.stderr.contains("3600s"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--state"), "{}", out.stderr);

    let wrong = sweep(&api, work.path(), &["--shard", "5/4"]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    let unknown = keyguard_env(
        &["scan", "--github-org", "nobody"],
        work.path(),
        &[
            ("GITHUB_API_URL".to_string(), api.clone()),
            ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
        ]
        .into(),
        None,
    );
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("404") && unknown.stderr.contains("organisation"),
        "{}",
        unknown.stderr
    );
}

/// The reusable workflow's own scripts, run as its matrix would run them:
/// each shard's step in its own directory, laid out as download-artifact
/// lays the artifacts out for the merge job, then the merge step.
#[tokio::test(flavor = "multi_thread")]
async fn the_reusable_workflow_s_shard_and_merge_steps_sweep_the_organisation() {
    let f = fixtures();
    let (api, _) = stand_in(organisation(&f, 40)).await;
    let workflow: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            keyguard_tests::repo_root().join(".github/workflows/org-sweep.yml"),
        )
        .unwrap(),
    )
    .unwrap();
    let script = |job: &str, name_starts: &str| -> String {
        let steps = workflow["jobs"][job]["steps"].as_sequence().unwrap();
        let step = steps
            .iter()
            .find(|s| {
                s["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_starts))
            })
            .unwrap_or_else(|| panic!("no step {name_starts:?} in job {job}"));
        step["run"].as_str().unwrap().to_string()
    };
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_keyguard"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let work = tempfile::tempdir().unwrap();
    let run = |script: &str, dir: &std::path::Path, env: &[(&str, String)]| {
        let out = std::process::Command::new("bash")
            .args(["-e", "-c", script])
            .current_dir(dir)
            .env("PATH", &path)
            .env("GITHUB_API_URL", &api)
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let shards = 3;
    for shard in 1..=shards {
        let dir = work.path().join(format!("shards/keyguard-shard-{shard}"));
        std::fs::create_dir_all(&dir).unwrap();
        let env = [
            ("GITHUB_TOKEN", TOKEN.to_string()),
            ("ORGANIZATION", "acme".to_string()),
            ("SHARD", format!("{shard}/{shards}")),
            ("HISTORY", "true".to_string()),
            ("INCLUDE_ARCHIVED", "false".to_string()),
            ("INCLUDE_FORKS", "false".to_string()),
        ];
        let (code, stderr) = run(&script("scan", "Sweep shard"), &dir, &env);
        assert_eq!(code, Some(0), "shard {shard}: {stderr}");
        assert!(dir.join("shard.json").exists());
    }
    let (code, stderr) = run(&script("merge", "One report"), work.path(), &[]);
    assert_eq!(code, Some(1), "findings fail the merge: {stderr}");
    let merged: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("keyguard-org.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        not_clean(&merged).keys().collect::<Vec<_>>(),
        ["acme/history-only", "acme/leaky-config"]
    );
    assert_eq!(merged["summary"]["repositories"], 38);
    assert!(work.path().join("keyguard-org.sarif").exists());
}

/// Without a token GitHub lists public repositories only: a sweep refuses
/// to run as if it had seen the organisation, unless told --public-only.
/// A repository's ignore file that is a symbolic link (to a host file or a
/// device) is never followed: its row says so and is not clean.
#[tokio::test(flavor = "multi_thread")]
async fn no_token_is_refused_and_a_linked_ignore_file_is_never_followed() {
    let f = fixtures();
    let linked = Repo::new();
    linked.write("app.py", "print('hi')\n");
    std::os::unix::fs::symlink("/etc/passwd", linked.path().join(".keyguardignore")).unwrap();
    linked.commit("an ignore file that points into the machine");
    let mut repos = organisation(&f, 6);
    repos.push(repository_json(
        "acme/linked",
        &url(&linked),
        "2026-12-01T00:00:00Z",
    ));
    let (api, _) = stand_in(repos).await;
    let work = tempfile::tempdir().unwrap();
    let env = |token: bool| -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [("GITHUB_API_URL".to_string(), api.clone())].into();
        if token {
            env.insert("GITHUB_TOKEN".into(), TOKEN.into());
        }
        env
    };
    let anonymous = keyguard_env(
        &["scan", "--github-org", "acme"],
        work.path(),
        &env(false),
        None,
    );
    assert_eq!(anonymous.code, 2, "{}", anonymous.stdout);
    assert!(
        anonymous.stderr.contains("GITHUB_TOKEN") && anonymous.stderr.contains("--public-only"),
        "{}",
        anonymous.stderr
    );
    let public = keyguard_env(
        &[
            "scan",
            "--github-org",
            "acme",
            "--public-only",
            "--format",
            "json",
        ],
        work.path(),
        &env(false),
        None,
    );
    let rows = rows(&report(&public));
    assert_eq!(rows["acme/leaky-config"].0, "found");
    let (status, _) = &rows["acme/linked"];
    assert_ne!(status, "clean", "{rows:?}");
    assert!(
        !public.stdout.contains("root:"),
        "a host file's text reached the report"
    );
    assert!(
        public.stdout.contains("not a regular file"),
        "{}",
        public.stdout
    );
}
