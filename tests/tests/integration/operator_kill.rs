//! The real `keyguard-operator` process, two replicas with leader election,
//! while 100 bearer-token rotations run at once: the leader is killed with
//! SIGKILL at random moments (from a seed), a replacement replica starts,
//! and the standby takes over. After every round each environment holds
//! one working token that X accepts, and each app's token was invalidated
//! exactly once per rotation asked: never skipped, never twice.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use keyguard_operator::TwitterCredential;
use keyguard_tests::credential::{Credential, CredentialKey::BearerToken, Env};
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::{eventually, install_crd};
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::{binary_command, drain_logs};
use keyguard_tests::world::value;
use keyguard_tests::x_api::{seed, AccessLevel, AppCredentials, XApiEmulator};
use keyguard_tests::ControlPlane;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

const RESOURCES: usize = 50;
const ENVIRONMENTS: usize = 2;
const ROUNDS: usize = 3;
const KILLS_PER_ROUND: usize = 2;
/// Upper bound for 100 rotations after a handover on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(240);

/// One replica: the process and the thread draining its logs.
struct Replica {
    name: String,
    child: Child,
    logs: std::thread::JoinHandle<String>,
}

impl Replica {
    fn start(cp: &ControlPlane, x: &XApiEmulator, name: &str) -> Replica {
        let port = keyguard_tests::control_plane::free_port().unwrap();
        let mut child = binary_command(cp, x, "debug", port)
            .env("POD_NAME", name)
            .env("KEYGUARD_LEADER_ELECTION", "true")
            .env("KEYGUARD_LEASE_SECONDS", "4")
            .spawn()
            .unwrap();
        let logs = drain_logs(&mut child);
        Replica {
            name: name.to_string(),
            child,
            logs,
        }
    }

    /// SIGKILL: no shutdown, no last write. Returns its logs.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        let _ = self.child.wait();
        self.logs.join().unwrap()
    }
}

fn env_name(e: usize) -> String {
    format!("env-{e}")
}

async fn declare(client: &kube::Client, apps: &[AppCredentials]) {
    for i in 0..RESOURCES {
        let mut environments = Vec::new();
        for e in 0..ENVIRONMENTS {
            let app = &apps[i * ENVIRONMENTS + e];
            let name = format!("keys-{i}-{e}");
            // The owner's access token: X invalidates a bearer token only with it.
            let source = [
                ("apiKey", app.api_key.as_str()),
                ("apiKeySecret", app.api_key_secret.as_str()),
                ("accessToken", app.access_token.as_str()),
                ("accessTokenSecret", app.access_token_secret.as_str()),
            ];
            fixtures::apply_source(client, "default", &name, &source).await;
            environments.push(
                Env::new(&env_name(e))
                    .source(&name)
                    .target(&format!("out-{i}-{e}"))
                    .keys([BearerToken]),
            );
        }
        let resource = Credential::named(&format!("bot-{i}")).environments(environments);
        fixtures::apply_credential(client, "default", resource).await;
    }
}

/// Environments whose target does not yet hold the app's live token, or
/// whose app was not invalidated exactly `rotations` times.
async fn unsettled(
    client: &kube::Client,
    x: &XApiEmulator,
    apps: &[AppCredentials],
    rotations: usize,
) -> Vec<String> {
    let Ok(list) = Api::<Secret>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
    else {
        return vec!["the Secrets could not be listed".into()];
    };
    let held: BTreeMap<String, Option<String>> = list
        .items
        .iter()
        .map(|s| (s.name_any(), value(s, "bearerToken")))
        .collect();
    let mut unsettled = Vec::new();
    for (n, app) in apps.iter().enumerate() {
        let target = format!("out-{}-{}", n / ENVIRONMENTS, n % ENVIRONMENTS);
        let live = x.current_bearer(&app.api_key);
        let invalidated = x.bearer_invalidations(&app.api_key);
        if live.is_none() || held.get(&target).cloned().flatten() != live {
            unsettled.push(format!("{target}: not the live token"));
        } else if invalidated != rotations {
            unsettled.push(format!(
                "{target}: invalidated {invalidated} times, {rotations} asked"
            ));
        }
    }
    unsettled
}

/// State records whose rotation has a step recorded but not finished.
async fn mid_rotation_now(client: &kube::Client) -> usize {
    Api::<Secret>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("keyguard.dev/part=state"))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|s| s.annotations().contains_key("keyguard.dev/rotation-step"))
                .count()
        })
        .unwrap_or(0)
}

async fn leader(client: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), "default")
        .get_opt("keyguard-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_the_leader_during_100_rotations_loses_and_repeats_nothing() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let cp = ControlPlane::start().await.unwrap();
    install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await.unwrap();
    let apps: Vec<AppCredentials> = (0..RESOURCES * ENVIRONMENTS)
        .map(|_| x.create_app(AccessLevel::Read))
        .collect();
    let mut replicas = vec![
        Replica::start(&cp, &x, "replica-0"),
        Replica::start(&cp, &x, "replica-1"),
    ];
    let mut started = 2;
    let mut logs = String::new();
    declare(&client, &apps).await;
    eventually(
        "the first 100 tokens minted and synced",
        CONVERGE,
        || async {
            unsettled(&client, &x, &apps, 0)
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;

    let resources: Api<TwitterCredential> = Api::namespaced(client.clone(), "default");
    let mut mid_rotation = Vec::new();
    for round in 1..=ROUNDS {
        let ask = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": format!("round-{round}")}}});
        for i in 0..RESOURCES {
            resources
                .patch(
                    &format!("bot-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&ask),
                )
                .await
                .unwrap();
        }
        for kill in 0..KILLS_PER_ROUND {
            // The first kill of a round comes while the requested rotations
            // run; each then waits (a bounded while) for one to be in
            // flight, so a kill that proves something does not depend on the
            // machine's speed.
            let pause = if kill == 0 {
                rng.u64(0..300)
            } else {
                rng.u64(100..2500)
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let until = tokio::time::Instant::now() + Duration::from_secs(2);
            while mid_rotation_now(&client).await == 0 && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // After a kill, the Lease names the dead replica until it expires.
            let names: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
            let at = eventually("a running replica to lead", CONVERGE, || async {
                let holder = leader(&client).await?;
                names.iter().position(|n| *n == holder)
            })
            .await;
            mid_rotation.push(mid_rotation_now(&client).await);
            logs += &replicas.remove(at).kill();
            replicas.push(Replica::start(&cp, &x, &format!("replica-{started}")));
            started += 1;
        }
        let settled = tokio::time::timeout(CONVERGE, async {
            loop {
                let left = unsettled(&client, &x, &apps, round).await;
                if left.is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await;
        if settled.is_err() {
            let left = unsettled(&client, &x, &apps, round).await;
            panic!(
                "round {round} (KEYGUARD_TEST_SEED={seed}) did not settle in {CONVERGE:?}: {} of {} environments, e.g. {:?}",
                left.len(),
                apps.len(),
                &left[..left.len().min(5)]
            );
        }
    }
    for r in replicas {
        logs += &r.kill();
    }
    eprintln!("state records mid-rotation at each kill: {mid_rotation:?}");
    assert!(
        mid_rotation.iter().any(|&n| n > 0),
        "no kill hit a rotation in flight ({mid_rotation:?}, KEYGUARD_TEST_SEED={seed}): this run proved nothing"
    );
    let states = Api::<Secret>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("keyguard.dev/part=state"))
        .await
        .unwrap();
    assert_eq!(states.items.len(), RESOURCES * ENVIRONMENTS);
    for s in &states.items {
        assert_eq!(
            s.annotations().get("keyguard.dev/rotation-step"),
            None,
            "{} was left mid-rotation",
            s.name_any()
        );
    }
    let secrets = Secrets::new(
        apps.iter()
            .flat_map(|a| [a.api_key_secret.clone()])
            .chain(apps.iter().filter_map(|a| x.current_bearer(&a.api_key)))
            // The invalidated tokens too: the likeliest to be logged.
            .chain(apps.iter().flat_map(|a| x.invalidated_bearers(&a.api_key))),
    );
    assert_no_leak("the replicas' logs at DEBUG", &logs, &secrets);
}
