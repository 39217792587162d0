//! Operator benchmark (not a test): time from apply to every target synced
//! for N resources of 3 environments each (with unrelated Secrets in other
//! namespaces, as a real cluster has), latency percentiles from a source
//! change to its target updated, the operator's RSS, and API requests
//! during an idle minute of resyncs, scraped from the apiserver's metrics.
//!
//! cargo build --release -p keyguard-operator && cargo build --release -p keyguard-tests --bin keyguard-operator-bench
//! target/release/keyguard-operator-bench 1 300 1000:10000   (N resources, or N:UNRELATED Secrets)
//! target/release/keyguard-operator-bench rotate 300         (rotate-now on N environments at once)
//! target/release/keyguard-operator-bench schedule 300 3     (bearer every minute on N, watched M minutes)
//! KEYGUARD_BENCH_RESYNC_SECONDS=10, KEYGUARD_BENCH_LOG_FILTER=info: the operator's resync and logs

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

/// (writes to the operator's resources, all requests to them) from
/// apiserver_request_total, and the requests by "VERB resource/subresource".
async fn request_breakdown(
    client: &kube::Client,
) -> anyhow::Result<(f64, f64, BTreeMap<String, f64>)> {
    let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
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
        let sub = line
            .split("subresource=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default();
        *by_kind
            .entry(format!("{verb} {resource}/{sub}"))
            .or_default() += value;
    }
    Ok((writes, all, by_kind))
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

/// `unrelated` Secrets of about 1 KiB across `unrelated / 33` namespaces:
/// what a real cluster holds besides the operator's objects.
async fn unrelated_load(client: &kube::Client, unrelated: usize) -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let namespaces = unrelated.div_ceil(33);
    for k in 0..namespaces {
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("noise-{k}")}}))?,
            )
            .await?;
    }
    let filler = "x".repeat(1024);
    futures::stream::iter(0..unrelated)
        .map(|i| {
            let api: Api<Secret> =
                Api::namespaced(client.clone(), &format!("noise-{}", i % namespaces));
            let secret = json!({"metadata": {"name": format!("unrelated-{i}"), "labels": {"app": "noise"}},
                "stringData": {"config": filler}});
            async move {
                api.create(&PostParams::default(), &serde_json::from_value(secret)?)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Source Secrets and resources of 3 environments each, `n` of them.
async fn create_resources(
    secrets: &Api<Secret>,
    credentials: &Api<TwitterCredential>,
    app: &keyguard_tests::x_api::AppCredentials,
    n: usize,
) -> anyhow::Result<()> {
    for i in 0..n {
        set_source(secrets, i, app).await?;
    }
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
    Ok(())
}

async fn set_source(
    secrets: &Api<Secret>,
    i: usize,
    app: &keyguard_tests::x_api::AppCredentials,
) -> anyhow::Result<()> {
    let data: BTreeMap<&str, &str> = BTreeMap::from([
        ("apiKey", app.api_key.as_str()),
        ("apiKeySecret", app.api_key_secret.as_str()),
        ("accessToken", app.access_token.as_str()),
        ("accessTokenSecret", app.access_token_secret.as_str()),
    ]);
    let source = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("src-{i}")}, "stringData": data});
    secrets
        .patch(
            &format!("src-{i}"),
            &PatchParams::apply("bench"),
            &Patch::Apply(&source),
        )
        .await?;
    Ok(())
}

/// Change → target updated: `samples` sources, one every 20 ms, switch to
/// another app's keys; a watch on the targets notes when each resource's
/// `staging` target (apiKey, apiKeySecret) changes. Latencies, sorted.
async fn change_latencies(
    secrets: &Api<Secret>,
    app: &keyguard_tests::x_api::AppCredentials,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let seen: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Instant>>> = Default::default();
    let record = seen.clone();
    let key = app.api_key.clone();
    let cfg = watcher::Config::default().labels("app.kubernetes.io/managed-by=keyguard-operator");
    let watch = tokio::spawn(watcher(secrets.clone(), cfg).for_each(move |event| {
        if let Ok(watcher::Event::Apply(s)) = event {
            let new = s
                .data
                .as_ref()
                .and_then(|d| d.get("apiKey"))
                .is_some_and(|v| v.0 == key.as_bytes());
            if new {
                let name = s.metadata.name.unwrap_or_default();
                record
                    .lock()
                    .unwrap()
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
        async {}
    }));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut asked = Vec::new();
    for i in 0..samples {
        asked.push((format!("out-{i}-staging"), Instant::now()));
        set_source(secrets, i, app).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let latencies = loop {
        let got = seen.lock().unwrap().clone();
        if asked.iter().all(|(name, _)| got.contains_key(name)) {
            let mut l: Vec<Duration> = asked
                .iter()
                .map(|(name, at)| got[name].saturating_duration_since(*at))
                .collect();
            l.sort();
            break l;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "changes not synced within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    watch.abort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(n: usize, unrelated: usize) -> anyhow::Result<()> {
    let cp = ControlPlane::start().await?;
    keyguard_tests::kube_helpers::install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await?;
    unrelated_load(&client, unrelated).await?;
    let (mut operator, metrics_addr) = spawn_operator(&cp, &x)?;

    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench");
    let credentials: Api<TwitterCredential> = Api::namespaced(client.clone(), "bench");
    let app = x.create_app(AccessLevel::Read);
    let started = Instant::now();
    create_resources(&secrets, &credentials, &app, n).await?;
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
    // Let status writes and Events settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss = rss_kib(operator.id());
    let next = x.create_app(AccessLevel::Read);
    let latencies = change_latencies(&secrets, &next, n.min(200)).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // An idle minute (with KEYGUARD_BENCH_RESYNC_SECONDS=10: six resyncs
    // of every resource, the hour of a default resync).
    let (w0, a0, k0) = request_breakdown(&client).await?;
    let r0 = reconciles(&metrics_addr).await?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (w1, a1, k1) = request_breakdown(&client).await?;
    eprintln!(
        "reconciles in the idle minute: {}",
        reconciles(&metrics_addr).await? - r0
    );
    let rss_idle = rss_kib(operator.id());
    let idle: BTreeMap<&String, f64> = k1
        .iter()
        .map(|(k, v)| (k, v - k0.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    let is_write = |k: &str| WRITE_VERBS.iter().any(|w| k.starts_with(&format!("{w} ")));
    let (idle_writes, idle_reads): (BTreeMap<_, _>, BTreeMap<_, _>) =
        idle.into_iter().partition(|(k, _)| is_write(k));
    if !idle_writes.is_empty() {
        eprintln!("writes in the idle minute: {idle_writes:?}");
    }
    if !idle_reads.is_empty() {
        eprintln!("reads in the idle minute: {idle_reads:?}");
    }
    println!(
        "| {n} | {unrelated} | {:.2} s (applying took {:.2} s) | {:.0} / {:.0} / {:.0} ms | {} MiB | {} MiB | {} | {} |",
        synced.as_secs_f64(),
        applied.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
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
/// Refuses an operator binary older than its sources: figures from a stale
/// binary describe code that no longer exists.
fn ensure_fresh(binary: &std::path::Path) -> anyhow::Result<()> {
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .with_context(|| {
            format!(
                "{} is missing: cargo build --release -p keyguard-operator",
                binary.display()
            )
        })?;
    let mut dirs = vec![
        repo_root().join("operator/src"),
        repo_root().join("xapi/src"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::metadata(&path)?.modified()? > built {
                anyhow::bail!(
                    "{} is older than {}: cargo build --release -p keyguard-operator",
                    binary.display(),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// The operator, and the address its metrics are served on.
fn spawn_operator(
    cp: &ControlPlane,
    x: &XApiEmulator,
) -> anyhow::Result<(std::process::Child, String)> {
    let operator_bin = repo_root().join("target/release/keyguard-operator");
    ensure_fresh(&operator_bin)?;
    let http_addr = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string();
    let child = Command::new(&operator_bin)
        .args([
            "run",
            "--lease-namespace",
            "default",
            "--x-api-base",
            x.base_url(),
        ])
        // Metrics on the plain address: the bench reads its own counters.
        .args([
            "--http-addr",
            &http_addr,
            "--metrics-auth",
            "none",
            "--log-filter",
        ])
        .arg(std::env::var("KEYGUARD_BENCH_LOG_FILTER").unwrap_or_else(|_| "warn".into()))
        .args([
            "--resync-seconds",
            &std::env::var("KEYGUARD_BENCH_RESYNC_SECONDS").unwrap_or_else(|_| "600".into()),
        ])
        .env("KUBECONFIG", cp.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with --release first)",
                operator_bin.display()
            )
        })?;
    Ok((child, http_addr))
}

/// The operator's count of reconciles so far (all resources).
async fn reconciles(http_addr: &str) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http_addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: operator\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("keyguard_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
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

/// N resources, each with its own X app and one environment projecting a
/// bearer token rotated as `rotation` says, with the operator running.
struct Fleet {
    _cp: ControlPlane,
    x: XApiEmulator,
    operator: std::process::Child,
    apps: Vec<keyguard_tests::x_api::AppCredentials>,
    secrets: Api<Secret>,
    credentials: Api<TwitterCredential>,
}

async fn bearer_fleet(n: usize, rotation: serde_json::Value) -> anyhow::Result<Fleet> {
    let cp = ControlPlane::start().await?;
    keyguard_tests::kube_helpers::install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await?;
    let (operator, _) = spawn_operator(&cp, &x)?;
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
                "target": {"secretName": format!("out-{i}"), "keys": ["bearerToken"]}, "rotation": rotation}]}});
        credentials
            .patch(
                &format!("bot-{i}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(&tc),
            )
            .await?;
        apps.push(app);
    }
    Ok(Fleet {
        _cp: cp,
        x,
        operator,
        apps,
        secrets,
        credentials,
    })
}

fn bearer_of(s: &Secret) -> Option<String> {
    s.data
        .as_ref()?
        .get("bearerToken")
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// Pure: how many of the fleet's targets (`out-<i>`) do not hold their
/// app's live bearer token.
fn behind(
    x: &XApiEmulator,
    apps: &[keyguard_tests::x_api::AppCredentials],
    targets: &[Secret],
) -> usize {
    apps.iter()
        .enumerate()
        .filter(|(i, app)| {
            let target = targets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(&format!("out-{i}")));
            let live = x.current_bearer(&app.api_key);
            live.is_none() || target.and_then(bearer_of) != live
        })
        .count()
}

/// `schedule N MINUTES`: N environments whose bearer token rotates every
/// minute, watched for MINUTES after the first sync: rotations completed
/// per minute, X API calls per rotation, targets behind X at the end, RSS.
async fn scheduled(n: usize, minutes: u64) -> anyhow::Result<()> {
    let fleet = bearer_fleet(n, json!({"bearerToken": {"every": "1m"}})).await?;
    let Fleet {
        x, apps, secrets, ..
    } = &fleet;
    let all_current = |targets: &[Secret]| behind(x, apps, targets) == 0;
    wait_until(secrets, "the first sync", Instant::now(), &all_current).await?;
    let invalidations = || -> usize {
        apps.iter()
            .map(|a| x.bearer_invalidations(&a.api_key))
            .sum()
    };
    let (rotations_before, calls_before) = (invalidations(), x.requests().len());
    let mut peak_rss = 0;
    for _ in 0..minutes * 6 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        peak_rss = peak_rss.max(rss_kib(fleet.operator.id()));
    }
    let rotations = invalidations() - rotations_before;
    let calls = x.requests().len() - calls_before;
    let targets = secrets.list(&ListParams::default()).await?.items;
    let behind = behind(x, apps, &targets);
    println!(
        "| {n} | {minutes} min | {:.0} (ideal {n}) | {:.1} | {behind} | {} MiB |",
        rotations as f64 / minutes as f64,
        calls as f64 / rotations.max(1) as f64,
        peak_rss / 1024,
    );
    let mut operator = fleet.operator;
    operator.kill()?;
    operator.wait()?;
    Ok(())
}

/// `rotate N`: N resources, each with its own X app and one environment
/// projecting a bearer token; all are asked to rotate at once. Reports the
/// time until every target holds its app's new token, X API calls per
/// rotation, 429s seen and the operator's RSS.
async fn rotate(n: usize) -> anyhow::Result<()> {
    let Fleet {
        _cp,
        x,
        mut operator,
        apps,
        secrets,
        credentials,
    } = bearer_fleet(n, json!({})).await?;
    let all_current = |targets: &[Secret]| behind(&x, &apps, targets) == 0;
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
    if args.first().map(String::as_str) == Some("schedule") {
        println!("| environments | watched | rotations per minute | X API calls per rotation | targets behind X at the end | operator peak RSS |");
        println!("|---|---|---|---|---|---|");
        let n = args.get(1).map_or(Ok(300), |a| a.parse())?;
        let minutes = args.get(2).map_or(Ok(3), |a| a.parse())?;
        return scheduled(n, minutes).await;
    }
    if args.first().map(String::as_str) == Some("rotate") {
        println!("| environments | ask → all rotated | X API calls per rotation | invalidations | operator RSS |");
        println!("|---|---|---|---|---|");
        for n in args.split_off(1) {
            rotate(n.parse()?).await?;
        }
        return Ok(());
    }
    // `N` or `N:UNRELATED` (resources, unrelated Secrets).
    let runs: Vec<(usize, usize)> = args
        .iter()
        .map(|a| match a.split_once(':') {
            Some((n, u)) => Ok((n.parse()?, u.parse()?)),
            None => Ok((a.parse()?, 0)),
        })
        .collect::<anyhow::Result<_>>()?;
    println!("| resources | unrelated Secrets | apply → all synced | change → target p50 / p99 / max | operator RSS after sync | RSS after an idle minute | writes in idle minute | requests in idle minute |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, unrelated) in if runs.is_empty() {
        vec![(1, 0), (300, 0)]
    } else {
        runs
    } {
        run(n, unrelated).await?;
    }
    Ok(())
}
