//! Operator benchmark (not a test): time from apply to every target synced
//! for N resources of 3 environments each, the operator's RSS afterwards,
//! and API requests during an idle minute, scraped from the apiserver's
//! own metrics.
//!
//! cargo build --release -p keyguard-operator && cargo build --release -p keyguard-tests --bin keyguard-operator-bench
//! target/release/keyguard-operator-bench 1 300
//! target/release/keyguard-operator-bench rotate 300

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use keyguard_operator::TwitterCredential;
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};
use keyguard_tests::{repo_root, ControlPlane};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "APPLY"];
const OURS: [&str; 6] = [
    "secrets",
    "twittercredentials",
    "roles",
    "rolebindings",
    "events",
    "deployments",
];

/// (writes to the operator's resources, all requests to them), from
/// apiserver_request_total.
async fn request_counts(client: &kube::Client) -> anyhow::Result<(f64, f64)> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let (mut writes, mut all) = (0.0, 0.0);
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some(resource) = line
            .split("resource=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if !OURS.contains(&resource) {
            continue;
        }
        let verb = line
            .split("verb=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        all += value;
        if WRITE_VERBS.contains(&verb) {
            writes += value;
        }
    }
    Ok((writes, all))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn run(n: usize) -> anyhow::Result<()> {
    let cp = ControlPlane::start().await?;
    keyguard_tests::kube_helpers::install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await?;
    let mut operator = spawn_operator(&cp, &x)?;

    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench");
    let credentials: Api<TwitterCredential> = Api::namespaced(client.clone(), "bench");
    let app = x.create_app(AccessLevel::Read);
    let mut sources = Vec::new();
    for i in 0..n {
        let data: BTreeMap<&str, &str> = BTreeMap::from([
            ("apiKey", app.api_key.as_str()),
            ("apiKeySecret", app.api_key_secret.as_str()),
            ("accessToken", app.access_token.as_str()),
            ("accessTokenSecret", app.access_token_secret.as_str()),
        ]);
        sources.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("src-{i}")}, "stringData": data}));
    }
    for (i, s) in sources.iter().enumerate() {
        secrets
            .patch(
                &format!("src-{i}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(s),
            )
            .await?;
    }
    let started = Instant::now();
    for i in 0..n {
        let env = |name: &str, keys: serde_json::Value| {
            json!({"name": name, "source": {"secretRef": {"name": format!("src-{i}")}},
            "target": {"secretName": format!("out-{i}-{name}"), "keys": keys}, "access": {"serviceAccounts": ["app"]}})
        };
        let tc = json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential", "metadata": {"name": format!("bot-{i}")},
            "spec": {"environments": [env("production", json!(["bearerToken"])), env("staging", json!(["apiKey", "apiKeySecret"])), env("development", json!(["accessToken", "accessTokenSecret"]))]}});
        credentials
            .patch(
                &format!("bot-{i}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(&tc),
            )
            .await?;
    }
    let applied = started.elapsed();
    let lp = ListParams::default()
        .labels("app.kubernetes.io/managed-by=keyguard-operator,!keyguard.dev/part");
    loop {
        let count = secrets.list_metadata(&lp).await?.items.len();
        if count == 3 * n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "only {count} of {} targets after 15 minutes",
            3 * n
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let synced = started.elapsed();
    // Let status writes and Events settle, then measure an idle minute.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss = rss_kib(operator.id());
    let (w0, a0) = request_counts(&client).await?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (w1, a1) = request_counts(&client).await?;
    let rss_idle = rss_kib(operator.id());
    println!(
        "| {n} | {} | {:.2} s (applying took {:.2} s) | {} MiB | {} MiB | {} | {} |",
        3 * n,
        synced.as_secs_f64(),
        applied.as_secs_f64(),
        rss / 1024,
        rss_idle / 1024,
        w1 - w0,
        a1 - a0
    );
    operator.kill()?;
    operator.wait()?;
    Ok(())
}

/// The release operator as its own process, against `cp` and the emulator.
fn spawn_operator(cp: &ControlPlane, x: &XApiEmulator) -> anyhow::Result<std::process::Child> {
    let operator_bin = repo_root().join("target/release/keyguard-operator");
    Command::new(&operator_bin)
        .args([
            "run",
            "--lease-namespace",
            "default",
            "--x-api-base",
            x.base_url(),
        ])
        .args(["--http-addr", "127.0.0.1:0", "--log-filter", "warn"])
        .env("KUBECONFIG", cp.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with --release first)",
                operator_bin.display()
            )
        })
}

/// Polls the bench namespace's Secrets until `check` holds.
async fn wait_until(
    secrets: &Api<Secret>,
    what: &str,
    started: Instant,
    check: &dyn Fn(&[Secret]) -> bool,
) -> anyhow::Result<Duration> {
    loop {
        let targets = secrets.list(&ListParams::default()).await?.items;
        if check(&targets) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "{what} took over 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `rotate N`: N resources, each with its own X app and one environment
/// projecting a bearer token; all are asked to rotate at once. Reports the
/// time until every target holds its app's new token, X API calls per
/// rotation, 429s seen and the operator's RSS.
async fn rotate(n: usize) -> anyhow::Result<()> {
    let cp = ControlPlane::start().await?;
    keyguard_tests::kube_helpers::install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await?;
    let mut operator = spawn_operator(&cp, &x)?;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench");
    let credentials: Api<TwitterCredential> = Api::namespaced(client.clone(), "bench");
    let mut apps = Vec::new();
    for i in 0..n {
        let app = x.create_app(AccessLevel::Read);
        let src = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("src-{i}")},
            "stringData": {"apiKey": app.api_key, "apiKeySecret": app.api_key_secret}});
        secrets
            .patch(
                &format!("src-{i}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(&src),
            )
            .await?;
        let tc = json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential", "metadata": {"name": format!("bot-{i}")},
            "spec": {"environments": [{"name": "production", "source": {"secretRef": {"name": format!("src-{i}")}},
                "target": {"secretName": format!("out-{i}"), "keys": ["bearerToken"]}}]}});
        credentials
            .patch(
                &format!("bot-{i}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(&tc),
            )
            .await?;
        apps.push(app);
    }
    let bearer_of = |s: &Secret| {
        s.data
            .as_ref()?
            .get("bearerToken")
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let all_current = |targets: &[Secret]| {
        apps.iter().enumerate().all(|(i, app)| {
            let target = targets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(&format!("out-{i}")));
            target
                .and_then(bearer_of)
                .is_some_and(|b| Some(b) == x.current_bearer(&app.api_key))
        })
    };
    wait_until(&secrets, "the first sync", Instant::now(), &all_current).await?;
    let before: Vec<Option<String>> = apps.iter().map(|a| x.current_bearer(&a.api_key)).collect();
    let calls_before = x.requests().len();
    let started = Instant::now();
    for i in 0..n {
        let patch = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": "bench"}}});
        credentials
            .patch(
                &format!("bot-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    let asked = started.elapsed();
    let rotated = |targets: &[Secret]| {
        all_current(targets)
            && apps
                .iter()
                .zip(&before)
                .all(|(a, old)| x.current_bearer(&a.api_key) != *old)
    };
    let took = wait_until(&secrets, "the rotations", started, &rotated).await?;
    let requests = x.requests();
    let calls = &requests[calls_before..];
    let invalidations: usize = apps
        .iter()
        .map(|a| x.bearer_invalidations(&a.api_key))
        .sum();
    println!(
        "| {n} | {:.2} s (asking took {:.2} s) | {:.1} | {invalidations} | {} MiB |",
        took.as_secs_f64(),
        asked.as_secs_f64(),
        calls.len() as f64 / n as f64,
        rss_kib(operator.id()) / 1024,
    );
    let mut by_endpoint: BTreeMap<&str, usize> = BTreeMap::new();
    for c in calls {
        *by_endpoint.entry(c.as_str()).or_default() += 1;
    }
    println!("X API calls during the rotations, by endpoint: {by_endpoint:?}");
    operator.kill()?;
    operator.wait()?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("rotate") {
        println!("| environments | ask → all rotated | X API calls per rotation | invalidations | operator RSS |");
        println!("|---|---|---|---|---|");
        for n in args.split_off(1) {
            rotate(n.parse()?).await?;
        }
        return Ok(());
    }
    let sizes: Vec<usize> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    println!("| resources | target Secrets | apply → all synced | operator RSS after sync | RSS after idle minute | writes in idle minute | requests in idle minute |");
    println!("|---|---|---|---|---|---|---|");
    for n in if sizes.is_empty() {
        vec![1, 300]
    } else {
        sizes
    } {
        run(n).await?;
    }
    Ok(())
}
