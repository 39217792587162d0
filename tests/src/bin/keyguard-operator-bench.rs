//! Operator benchmark (not a test): time from apply to every target synced
//! for N resources of 3 environments each (with unrelated Secrets in other
//! namespaces, as a real cluster has), latency percentiles from a source
//! change to its target updated, the operator's RSS, and API requests
//! during an idle minute of resyncs, scraped from the apiserver's metrics.
//!
//! cargo build --release -p keyguard-operator && cargo build --release -p keyguard-tests --bin keyguard-operator-bench
//! target/release/keyguard-operator-bench 1 300 1000:10000   (N resources, or N:UNRELATED Secrets; one shared X app)
//! target/release/keyguard-operator-bench curve 1000 3000 10000   (growth: each size and a 1-resource base, 10,000 unrelated, an app each)
//! target/release/keyguard-operator-bench fairness 5000 100  (FLOOD resources of one namespace change at once; QUIET of another, one by one)
//! target/release/keyguard-operator-bench rotate 300         (rotate-now on N environments at once)
//! target/release/keyguard-operator-bench schedule 300 3     (bearer every minute on N, watched M minutes)
//! KEYGUARD_BENCH_RESYNC_SECONDS=10, KEYGUARD_BENCH_LOG_FILTER=info: the operator's resync and logs
//! KEYGUARD_BENCH_WRAP="heaptrack -o /tmp/operator": run the operator under a heap profiler

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

/// Source Secrets and resources of 3 environments each, `n` of them;
/// resource `i` uses `apps[i % apps.len()]`. Sixteen writes in flight, as
/// a GitOps tool applying a large change would have.
async fn create_resources(
    secrets: &Api<Secret>,
    credentials: &Api<TwitterCredential>,
    apps: &[keyguard_tests::x_api::AppCredentials],
    n: usize,
) -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(0..n)
        .map(|i| set_source(secrets, i, &apps[i % apps.len()]))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    futures::stream::iter(0..n)
        .map(|i| async move {
            credentials
                .patch(
                    &format!("bot-{i}"),
                    &PatchParams::apply("bench"),
                    &Patch::Apply(&three_environments(i)),
                )
                .await?;
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Resource `bot-<i>`: production projects a minted bearer token, staging
/// the app's key pair, development the user's token pair.
fn three_environments(i: usize) -> serde_json::Value {
    let env = |name: &str, keys: serde_json::Value| {
        json!({"name": name, "source": {"secretRef": {"name": format!("src-{i}")}},
        "target": {"secretName": format!("out-{i}-{name}"), "keys": keys}, "access": {"serviceAccounts": ["app"]}})
    };
    json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential", "metadata": {"name": format!("bot-{i}")},
        "spec": {"environments": [env("production", json!(["bearerToken"])), env("staging", json!(["apiKey", "apiKeySecret"])), env("development", json!(["accessToken", "accessTokenSecret"]))]}})
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

/// Change → target updated: `samples` sources, one every `every`, switch
/// to another app's keys (source `i` to `next[i % next.len()]`); a watch on
/// the targets notes when each resource's `staging` target (apiKey,
/// apiKeySecret) holds its new key. Latencies, sorted.
async fn change_latencies(
    secrets: &Api<Secret>,
    next: &[keyguard_tests::x_api::AppCredentials],
    samples: usize,
    every: Duration,
) -> anyhow::Result<Changes> {
    let expected: BTreeMap<String, String> = (0..samples)
        .map(|i| {
            (
                format!("out-{i}-staging"),
                next[i % next.len()].api_key.clone(),
            )
        })
        .collect();
    let seen = watch_targets(secrets, expected);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut asked = Vec::new();
    for i in 0..samples {
        let at = Instant::now();
        set_source(secrets, i, &next[i % next.len()]).await?;
        asked.push((format!("out-{i}-staging"), at, at.elapsed()));
        tokio::time::sleep(every).await;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let got = seen.lock().unwrap().clone();
        if asked.iter().all(|(name, ..)| got.contains_key(name)) {
            return Ok(Changes::new(
                asked
                    .iter()
                    .map(|(name, at, patch)| {
                        (*at, *patch, got[name].saturating_duration_since(*at))
                    })
                    .collect(),
            ));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "changes not synced within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each change asked: when, how long its PATCH took to return (the
/// apiserver's queue for the tenant's own write), and change → target.
struct Changes {
    samples: Vec<(Instant, Duration, Duration)>,
}

impl Changes {
    fn new(samples: Vec<(Instant, Duration, Duration)>) -> Self {
        Changes { samples }
    }

    /// Change → target, sorted.
    fn latencies(&self) -> Vec<Duration> {
        self.sorted(|(_, _, total)| *total)
    }

    /// The PATCH's own round trip, sorted.
    fn patches(&self) -> Vec<Duration> {
        self.sorted(|(_, patch, _)| *patch)
    }

    /// From the PATCH's answer (the change stored) to the target, sorted.
    fn after_commit(&self) -> Vec<Duration> {
        self.sorted(|(_, patch, total)| total.saturating_sub(*patch))
    }

    fn sorted(&self, f: impl Fn(&(Instant, Duration, Duration)) -> Duration) -> Vec<Duration> {
        let mut l: Vec<Duration> = self.samples.iter().map(f).collect();
        l.sort();
        l
    }

    /// The `n` slowest changes: seconds after `since` it was asked, its
    /// PATCH and its total, for stderr.
    fn slowest(&self, since: Instant, n: usize) -> String {
        let mut by_total: Vec<_> = self.samples.iter().enumerate().collect();
        by_total.sort_by_key(|(_, (_, _, total))| std::cmp::Reverse(*total));
        by_total
            .iter()
            .take(n)
            .map(|(i, (at, patch, total))| {
                let wall = std::time::SystemTime::now() - at.elapsed();
                let ms = wall
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    % 86_400_000;
                format!(
                    "src-{i} at {:.1} s ({:02}:{:02}:{:02}.{:03} UTC): patch {} ms, total {} ms",
                    at.saturating_duration_since(since).as_secs_f64(),
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000,
                    patch.as_millis(),
                    total.as_millis()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// p50 / p99 / max of sorted durations, in ms.
fn spread(sorted: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.0} / {:.0} / {:.0} ms",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        sorted.last().map_or(0.0, |d| ms(*d))
    )
}

type Seen = std::sync::Arc<std::sync::Mutex<BTreeMap<String, Instant>>>;

/// Watches `secrets` and notes when each target named in `expected` first
/// holds its expected apiKey. The watch stops when the returned map is
/// dropped by everyone but the watch.
fn watch_targets(secrets: &Api<Secret>, expected: BTreeMap<String, String>) -> Seen {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let seen: Seen = Default::default();
    let record = seen.clone();
    let cfg = watcher::Config::default().labels("app.kubernetes.io/managed-by=keyguard-operator");
    let mut events = watcher(secrets.clone(), cfg).boxed();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if std::sync::Arc::strong_count(&record) == 1 {
                return;
            }
            let Ok(watcher::Event::Apply(s)) = event else {
                continue;
            };
            let name = s.metadata.name.clone().unwrap_or_default();
            let Some(key) = expected.get(&name) else {
                continue;
            };
            let new = s
                .data
                .as_ref()
                .and_then(|d| d.get("apiKey"))
                .is_some_and(|v| v.0 == key.as_bytes());
            if new {
                record
                    .lock()
                    .unwrap()
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    });
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Whether the bench's resources share one X app (the worst case of
/// key-reuse detection: every environment shares with every other) or
/// each has its own, as separate teams' bots would.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Apps {
    Shared,
    OnePerResource,
}

impl Apps {
    fn make(self, x: &XApiEmulator, n: usize) -> Vec<keyguard_tests::x_api::AppCredentials> {
        let count = if self == Apps::Shared { 1 } else { n.max(1) };
        (0..count)
            .map(|_| x.create_app(AccessLevel::Read))
            .collect()
    }
}

/// One run's figures (one table row).
struct Figures {
    n: usize,
    unrelated: usize,
    synced: Duration,
    applied: Duration,
    latencies: Vec<Duration>,
    rss_kib: u64,
    rss_idle_kib: u64,
    idle_writes: f64,
    idle_requests: f64,
}

impl Figures {
    fn row(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "| {} | {} | {:.1} s (applying took {:.1} s) | {:.0} / {:.0} / {:.0} ms | {} MiB | {} MiB | {} | {} |",
            self.n,
            self.unrelated,
            self.synced.as_secs_f64(),
            self.applied.as_secs_f64(),
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
            self.latencies.last().map_or(0.0, |d| ms(*d)),
            self.rss_kib / 1024,
            self.rss_idle_kib / 1024,
            self.idle_writes,
            self.idle_requests
        )
    }
}

/// Polls until `want` target Secrets exist in `secrets`' namespace. Each
/// poll lists every Secret of the namespace in the apiserver, so large
/// sizes poll less often (every 3 s at 30,000 targets): the bench's own
/// lists must not be what slows the sync it measures.
async fn wait_for_targets(
    secrets: &Api<Secret>,
    want: usize,
    started: Instant,
) -> anyhow::Result<Duration> {
    let lp = ListParams::default()
        .labels("app.kubernetes.io/managed-by=keyguard-operator,!keyguard.dev/part");
    let every = Duration::from_millis(250).max(Duration::from_micros(100 * want as u64));
    loop {
        let count = secrets.list_metadata(&lp).await?.items.len();
        if count >= want {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "only {count} of {want} targets after 30 minutes"
        );
        tokio::time::sleep(every).await;
    }
}

async fn create_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}}))?,
        )
        .await?;
    Ok(())
}

async fn run(n: usize, unrelated: usize, apps: Apps) -> anyhow::Result<Figures> {
    let cp = ControlPlane::start().await?;
    keyguard_tests::kube_helpers::install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await?;
    unrelated_load(&client, unrelated).await?;
    let (mut operator, metrics_addr) = spawn_operator(&cp, &x)?;
    create_namespace(&client, "bench").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench");
    let credentials: Api<TwitterCredential> = Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    create_resources(&secrets, &credentials, &apps.make(&x, n), n).await?;
    let applied = started.elapsed();
    let synced = wait_for_targets(&secrets, 3 * n, started).await?;
    settle(&metrics_addr).await?;
    let rss_synced = rss_kib(operator.id());
    let samples = n.min(200);
    let next = apps.make(&x, samples);
    let latencies = change_latencies(&secrets, &next, samples, Duration::from_millis(20))
        .await?
        .latencies();
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
    let rss_idle_kib = rss_kib(operator.id());
    report_idle_requests(&k0, &k1);
    stop(&mut operator)?;
    Ok(Figures {
        n,
        unrelated,
        synced,
        applied,
        latencies,
        rss_kib: rss_synced,
        rss_idle_kib,
        idle_writes: w1 - w0,
        idle_requests: a1 - a0,
    })
}

/// Prints what the operator asked of the apiserver in the idle minute.
fn report_idle_requests(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) {
    let idle: BTreeMap<&String, f64> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0.0)))
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
}

/// `curve SIZES…`: the growth curve. One resource first (the baseline),
/// then each size, every run with 10,000 unrelated Secrets and its own X
/// app per resource; the last column is what each resource adds to RSS.
async fn curve(sizes: &[usize]) -> anyhow::Result<()> {
    const UNRELATED: usize = 10_000;
    println!("| resources | unrelated Secrets | apply → all synced | change → target p50 / p99 / max | RSS after sync | RSS after an idle minute | writes in idle minute | requests in idle minute | KiB per resource |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let base = run(1, UNRELATED, Apps::OnePerResource).await?;
    println!("{} |", base.row());
    for &n in sizes {
        let f = run(n, UNRELATED, Apps::OnePerResource).await?;
        let marginal = f.rss_kib.saturating_sub(base.rss_kib) as f64 / (n - 1).max(1) as f64;
        println!("{} {marginal:.1} |", f.row());
    }
    Ok(())
}

/// `fairness FLOOD QUIET`: FLOOD resources in one namespace all change at
/// once (every source to a new app, 32 writes in flight) while QUIET
/// resources in another change one every 250 ms. Prints the quiet
/// namespace's change → target latencies, how long the flood took to land,
/// and the deepest reconcile queue seen.
async fn fairness(flood: usize, quiet: usize) -> anyhow::Result<()> {
    let cp = ControlPlane::start().await?;
    keyguard_tests::kube_helpers::install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await?;
    let (mut operator, metrics_addr) = spawn_operator(&cp, &x)?;
    let started = Instant::now();
    let mut apis = Vec::new();
    for (namespace, n) in [("flood", flood), ("quiet", quiet)] {
        create_namespace(&client, namespace).await?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let credentials: Api<TwitterCredential> = Api::namespaced(client.clone(), namespace);
        create_resources(&secrets, &credentials, &Apps::OnePerResource.make(&x, n), n).await?;
        apis.push(secrets);
    }
    for (secrets, n) in apis.iter().zip([flood, quiet]) {
        wait_for_targets(secrets, 3 * n, started).await?;
    }
    let synced = started.elapsed();
    settle(&metrics_addr).await?;
    let (flood_secrets, quiet_secrets) = (apis[0].clone(), apis[1].clone());
    let flood_next = Apps::OnePerResource.make(&x, flood);
    let expected = (0..flood)
        .map(|i| (format!("out-{i}-staging"), flood_next[i].api_key.clone()))
        .collect();
    let flood_seen = watch_targets(&flood_secrets, expected);
    let deepest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = tokio::spawn(sample_queue_depth(metrics_addr.clone(), deepest.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flood_started = Instant::now();
    let writer = tokio::spawn(async move {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(0..flood)
            .map(|i| {
                let (secrets, app) = (flood_secrets.clone(), flood_next[i].clone());
                async move { set_source(&secrets, i, &app).await }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| flood_started.elapsed())
    });
    // The quiet namespace changes while the flood's writes land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet_next = Apps::OnePerResource.make(&x, quiet);
    let changes = change_latencies(
        &quiet_secrets,
        &quiet_next,
        quiet,
        Duration::from_millis(250),
    )
    .await?;
    eprintln!(
        "quiet PATCH round trip {}; stored → target {}; slowest: {}",
        spread(&changes.patches()),
        spread(&changes.after_commit()),
        changes.slowest(flood_started, 8)
    );
    let latencies = changes.latencies();
    let flood_written = writer.await??;
    let flood_landed = loop {
        if flood_seen.lock().unwrap().len() == flood {
            break flood_started.elapsed();
        }
        anyhow::ensure!(
            flood_started.elapsed() < Duration::from_secs(1800),
            "the flood did not land in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    sampler.abort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| {flood} | {quiet} | {:.1} s | {:.0} / {:.0} / {:.0} ms | {:.1} s (writing took {:.1} s) | {} | {} MiB |",
        synced.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        latencies.last().map_or(0.0, |d| ms(*d)),
        flood_landed.as_secs_f64(),
        flood_written.as_secs_f64(),
        deepest.load(std::sync::atomic::Ordering::Relaxed),
        rss_kib(operator.id()) / 1024,
    );
    stop(&mut operator)?;
    Ok(())
}

/// Waits until the operator has no reconcile running or waiting (status
/// writes and the reconciles they cause after the last target exists),
/// seen twice a second apart, then 10 s more for Events: a change measured
/// before that waits behind the sync's tail, not for its own reconcile.
async fn settle(http_addr: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut quiet = 0;
    while quiet < 2 {
        let depth = scrape(http_addr, "keyguard_reconcile_queue_depth ").await?;
        let running = scrape(http_addr, "keyguard_reconciles_running ").await?;
        quiet = if depth + running == 0.0 { quiet + 1 } else { 0 };
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the reconcile queue did not empty in 30 minutes"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "queue empty {:.1} s after the last target",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

/// Keeps the deepest `keyguard_reconcile_queue_depth` the operator reports.
async fn sample_queue_depth(
    http_addr: String,
    deepest: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        if let Ok(depth) = scrape(&http_addr, "keyguard_reconcile_queue_depth ").await {
            deepest.fetch_max(depth as u64, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    // KEYGUARD_BENCH_WRAP="heaptrack -o /tmp/operator": a heap profile
    // (RSS figures then describe the wrapper, not the operator).
    let wrap = std::env::var("KEYGUARD_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(wrapper) => {
            let mut c = Command::new(wrapper);
            c.args(words).arg(&operator_bin);
            c
        }
        None => Command::new(&operator_bin),
    };
    // Its own process group: stopping it stops a wrapper's child too.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
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

/// Stops the operator's process group with SIGTERM (a heap profiler
/// wrapping it then writes its profile), SIGKILL after 10 s.
fn stop(operator: &mut std::process::Child) -> anyhow::Result<()> {
    let group = format!("-{}", operator.id());
    Command::new("kill")
        .args(["-TERM", "--", &group])
        .status()?;
    for _ in 0..100 {
        if operator.try_wait()?.is_some() {
            std::thread::sleep(Duration::from_secs(1));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    operator.wait()?;
    Ok(())
}

/// The operator's count of reconciles so far (all resources).
async fn reconciles(http_addr: &str) -> anyhow::Result<f64> {
    scrape(http_addr, "keyguard_reconciles_total{").await
}

/// The sum of the operator's metric lines starting with `prefix`.
async fn scrape(http_addr: &str, prefix: &str) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http_addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: operator\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
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
    stop(&mut operator)?;
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
    stop(&mut operator)?;
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
    if args.first().map(String::as_str) == Some("curve") {
        let sizes: Vec<usize> = args[1..]
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()?;
        return curve(&sizes).await;
    }
    if args.first().map(String::as_str) == Some("fairness") {
        println!("| flood resources | quiet resources | apply → all synced | quiet change → target p50 / p99 / max | flood change → all landed | deepest queue | operator RSS |");
        println!("|---|---|---|---|---|---|---|");
        let flood = args.get(1).map_or(Ok(5000), |a| a.parse())?;
        let quiet = args.get(2).map_or(Ok(100), |a| a.parse())?;
        return fairness(flood, quiet).await;
    }
    // `N` or `N:UNRELATED` (resources, unrelated Secrets), all sharing
    // one X app, as every figure before the growth curve was measured.
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
        println!("{}", run(n, unrelated, Apps::Shared).await?.row());
    }
    Ok(())
}
