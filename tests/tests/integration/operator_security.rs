//! The operator against a hostile tenant and a careless admin, on a real
//! control plane: each test is one way to make a secrets operator leak,
//! overwrite or delete on someone else's behalf, and shows it refuses.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use keyguard_operator::{TwitterCredential, TwitterCredentialStatus};
use keyguard_tests::credential::CredentialKey::{AccessToken, ApiKey, BearerToken};
use keyguard_tests::credential::{Credential, DeletionPolicy, Env, WorkloadKind};
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::operator::RESTART_MIN_INTERVAL;
use keyguard_tests::status::Conditions;
use keyguard_tests::world::{value, World, WAIT};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

/// Environment `prod`, projecting `apiKey` from Secret `keys` into `out`
/// in the resource's own namespace: what most tests here declare.
fn prod() -> Env {
    Env::new("prod").source("keys").target("out").keys([ApiKey])
}

/// What a tenant with edit rights can do: remove the operator's finalizer,
/// then delete the resource, so nothing waits for its cleanup.
async fn strip_finalizer_and_delete(w: &World, ns: &str, name: &str) {
    let api = Api::<TwitterCredential>::namespaced(w.client.clone(), ns);
    let strip = json!({"metadata": {"finalizers": null}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .unwrap();
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

async fn tc(w: &World, ns: &str, name: &str) -> TwitterCredential {
    Api::<TwitterCredential>::namespaced(w.client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

async fn secret_owner(w: &World, ns: &str, name: &str) -> Option<String> {
    let s = w.secret(ns, name).await?;
    s.labels().get("keyguard.dev/owner-uid").cloned()
}

/// A client acting as user `name` (RBAC applies as for that user).
async fn as_user(w: &World, name: &str) -> Client {
    let mut config = w.cp.admin_config().await.unwrap();
    config.auth_info.impersonate = Some(name.to_string());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".to_string()]);
    Client::try_from(config).unwrap()
}

async fn grant(w: &World, ns: &str, user: &str, rules: Value) {
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": user}, "rules": rules})).unwrap();
    Api::<Role>::namespaced(w.client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": user},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(w.client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// Item 1: two tenants racing for the same target names. Whatever the
/// interleaving, a target's Secret, Role and RoleBinding end up owned by
/// one resource, and no ServiceAccount reads the other tenant's values.
#[tokio::test(flavor = "multi_thread")]
async fn racing_tenants_never_share_a_target() {
    const PAIRS: usize = 50;
    let w = World::start().await;
    let allow = [
        ("keyguard.dev/allow-from-tenant-a", "true"),
        ("keyguard.dev/allow-from-tenant-b", "true"),
    ];
    w.namespace("shared", &allow).await;
    for (ns, key) in [
        ("tenant-a", "AAAAAAAAAAAAAAAAAAAAAAAAA"),
        ("tenant-b", "BBBBBBBBBBBBBBBBBBBBBBBBB"),
    ] {
        w.namespace(ns, &[]).await;
        w.source(ns, "keys", &[("apiKey", key)]).await;
    }
    let resource = |tenant: &str, i: usize| {
        Credential::named(&format!("race-{i}")).environment(
            Env::new("prod")
                .source("keys")
                .target_namespace("shared")
                .target(&format!("creds-{i}"))
                .keys([ApiKey])
                .service_accounts([format!("{tenant}-reader")]),
        )
    };
    let applies = (0..PAIRS).flat_map(|i| {
        let w = &w;
        [("tenant-a", i), ("tenant-b", i)]
            .map(move |(t, i)| async move { w.apply(t, resource(t, i)).await })
    });
    futures::future::join_all(applies).await;

    // Settled: each pair has one winner (Synced) and one Conflict.
    let mut winners = BTreeMap::new();
    for i in 0..PAIRS {
        let name = format!("race-{i}");
        let winner = eventually(
            &format!("pair {i} to settle"),
            Duration::from_secs(90),
            || async {
                let a = w.status("tenant-a", &name).await;
                let b = w.status("tenant-b", &name).await;
                let synced = |s: &TwitterCredentialStatus| {
                    let c = s.environments.first()?.condition("Synced")?;
                    Some((c.status == "True", c.reason == "Conflict"))
                };
                match (synced(&a)?, synced(&b)?) {
                    ((true, _), (false, true)) => Some("tenant-a"),
                    ((false, true), (true, _)) => Some("tenant-b"),
                    _ => None,
                }
            },
        )
        .await;
        winners.insert(i, winner);
    }
    for (i, winner) in &winners {
        let uid = tc(&w, winner, &format!("race-{i}")).await.uid().unwrap();
        let name = format!("creds-{i}");
        let access = format!("keyguard-read-{name}");
        let role = Api::<Role>::namespaced(w.client.clone(), "shared")
            .get(&access)
            .await
            .unwrap();
        let binding = Api::<RoleBinding>::namespaced(w.client.clone(), "shared")
            .get(&access)
            .await
            .unwrap();
        assert_eq!(
            secret_owner(&w, "shared", &name).await.as_ref(),
            Some(&uid),
            "pair {i}: Secret"
        );
        assert_eq!(
            role.labels().get("keyguard.dev/owner-uid"),
            Some(&uid),
            "pair {i}: Role"
        );
        assert_eq!(
            binding.labels().get("keyguard.dev/owner-uid"),
            Some(&uid),
            "pair {i}: RoleBinding"
        );
        let subjects: Vec<String> = binding
            .subjects
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            subjects,
            [format!("{winner}-reader")],
            "pair {i}: bound to the owner's reader only"
        );
        // The loser's reader cannot read it; the winner's reads its own values.
        let loser = if *winner == "tenant-a" {
            "tenant-b"
        } else {
            "tenant-a"
        };
        let denied = Api::<Secret>::namespaced(
            w.cp.impersonating("shared", &format!("{loser}-reader"))
                .await
                .unwrap(),
            "shared",
        )
        .get(&name)
        .await;
        assert!(
            denied.is_err(),
            "pair {i}: {loser}'s reader must not read {winner}'s Secret"
        );
        let own = Api::<Secret>::namespaced(
            w.cp.impersonating("shared", &format!("{winner}-reader"))
                .await
                .unwrap(),
            "shared",
        )
        .get(&name)
        .await
        .unwrap();
        let expected = if *winner == "tenant-a" {
            "AAAAAAAAAAAAAAAAAAAAAAAAA"
        } else {
            "BBBBBBBBBBBBBBBBBBBBBBBBB"
        };
        assert_eq!(value(&own, "apiKey").as_deref(), Some(expected), "pair {i}");
    }
}

/// Item 2: every projected key, derived or copied, is put back to what the
/// operator holds; a value edited in a target is never adopted.
#[tokio::test(flavor = "multi_thread")]
async fn edited_target_values_are_put_back_never_adopted() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot").environment(prod().keys([BearerToken, AccessToken])),
    )
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let original = w.secret("team", "out").await.unwrap();
    let revision = w.status("team", "bot").await.environments[0].revision;
    for key in ["bearerToken", "accessToken"] {
        let tampered = json!({"data": {key: "dGFtcGVyZWQ="}});
        Api::<Secret>::namespaced(w.client.clone(), "team")
            .patch("out", &PatchParams::default(), &Patch::Merge(&tampered))
            .await
            .unwrap();
        w.wait_secret("team", "out", &format!("{key} put back"), |s| {
            value(s, key) == value(&original, key)
        })
        .await;
    }
    assert_eq!(
        w.status("team", "bot").await.environments[0].revision,
        revision,
        "a tampered value is no new revision"
    );
}

/// Item 3: an omitted target namespace is the resource's own, so two
/// environments naming the same Secret both ways are refused, not looped.
#[tokio::test(flavor = "multi_thread")]
async fn one_writer_per_target_even_when_the_namespace_is_spelled_two_ways() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "a-keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    w.source("team", "b-keys", &[("apiKey", "BBBBBBBBBBBBBBBBBBBBBBBBB")])
        .await;
    w.apply(
        "team",
        Credential::named("bot").environments([
            Env::new("first")
                .source("a-keys")
                .target("out")
                .keys([ApiKey]),
            Env::new("second")
                .source("b-keys")
                .target_namespace("team")
                .target("out")
                .keys([ApiKey]),
        ]),
    )
    .await;
    let refused = w
        .wait_condition("team", "bot", Some("second"), "Conflict", "True")
        .await;
    assert_eq!(refused.reason, "DuplicateTarget");
    w.wait_condition("team", "bot", Some("first"), "Synced", "True")
        .await;
    let before = w.secret("team", "out").await.unwrap();
    assert_eq!(
        value(&before, "apiKey").as_deref(),
        Some("AAAAAAAAAAAAAAAAAAAAAAAAA")
    );
    w.force_sync_and_wait("team", "bot", "1").await;
    let after = w.secret("team", "out").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "no ping-pong between two writers"
    );
}

async fn deployment(w: &World, ns: &str, name: &str) -> Api<Deployment> {
    let api: Api<Deployment> = Api::namespaced(w.client.clone(), ns);
    api.create(&PostParams::default(), &fixtures::deployment(name))
        .await
        .unwrap();
    api
}

fn restarted_for(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("keyguard.dev/restarted-for")
        .cloned()
}

async fn events(w: &World, ns: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(w.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// Item 4: a burst of source edits restarts each workload at most once per
/// minimum interval, the last content wins, and each rollout is its own
/// Event naming the workload and the revision.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_changes_is_one_debounced_rollout_per_interval() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source(
        "team",
        "keys",
        &[("accessToken", "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")],
    )
    .await;
    let deployments = deployment(&w, "team", "bot").await;
    let e = prod()
        .keys([AccessToken])
        .restart(WorkloadKind::Deployment, "bot");
    w.apply("team", Credential::named("bot").environment(e))
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;

    const EDITS: usize = 20;
    let started = std::time::Instant::now();
    for i in 0..EDITS {
        let token = format!("1-{:a>40}", i);
        w.source("team", "keys", &[("accessToken", &token)]).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let burst = started.elapsed();
    let last_revision = eventually("the last edit to be projected", WAIT, || async {
        let s = w.secret("team", "out").await?;
        (value(&s, "accessToken")? == format!("1-{:a>40}", EDITS - 1)).then_some(())?;
        Some(w.status("team", "bot").await.environments.first()?.revision)
    })
    .await;
    // The deferred rollout of the last content comes, naming its revision.
    let wanted = format!("revision {last_revision}");
    let rollouts = eventually("the rollout of the last revision", WAIT, || async {
        let evs = events(&w, "team", "Restarted").await;
        evs.iter()
            .any(|e| e.note.as_deref().unwrap_or("").contains(&wanted))
            .then_some(evs)
    })
    .await;
    let allowed = (burst.as_secs_f64() / RESTART_MIN_INTERVAL.as_secs_f64()).ceil() as usize + 1;
    assert!(
        !rollouts.is_empty() && rollouts.len() <= allowed,
        "{} rollouts for {EDITS} edits in {burst:?} (at most {allowed})",
        rollouts.len()
    );
    for e in &rollouts {
        assert!(
            e.note
                .as_deref()
                .unwrap_or("")
                .contains("Deployment team/bot"),
            "{:?}",
            e.note
        );
    }
    let notes: std::collections::BTreeSet<_> = rollouts.iter().map(|e| e.note.clone()).collect();
    assert_eq!(notes.len(), rollouts.len(), "each rollout is its own Event");
    let d = deployments.get("bot").await.unwrap();
    let fp = w.status("team", "bot").await.environments[0]
        .fingerprint
        .clone()
        .unwrap();
    let expected = keyguard_credentials::fingerprint(fp.as_bytes()).to_string();
    assert_eq!(
        restarted_for(&d).as_deref(),
        Some(expected.trim_start_matches("sha256:")),
        "the last content wins"
    );
}

/// Items 5 and 7: creating a TwitterCredential lends no rights. The chart's
/// ValidatingAdmissionPolicy makes the apiserver refuse a source Secret
/// its author cannot get, or a restart target they cannot patch.
#[tokio::test(flavor = "multi_thread")]
async fn a_resource_cannot_project_or_restart_what_its_author_could_not() {
    let w = World::start().await;
    let helm = tokio::task::spawn_blocking(keyguard_tests::control_plane::ensure_helm)
        .await
        .unwrap()
        .expect("helm builds from tests/helm");
    let rendered = std::process::Command::new(helm)
        .args(["template", "keyguard"])
        .arg(keyguard_tests::repo_root().join("charts/twitter-keyguard"))
        .args(["--show-only", "templates/admission-policy.yaml"])
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let policy = w.cp.dir().join("admission-policy.yaml");
    std::fs::write(&policy, &rendered.stdout).unwrap();
    let out =
        w.cp.kubectl()
            .args(["apply", "-f"])
            .arg(&policy)
            .output()
            .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    w.namespace("team", &[]).await;
    w.source(
        "team",
        "db-password",
        &[("apiKey", "not-an-x-key-but-a-database-password")],
    )
    .await;
    w.source(
        "team",
        "bot-keys",
        &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")],
    )
    .await;
    deployment(&w, "team", "payments").await;
    let manage_tcs = json!({"apiGroups": ["keyguard.dev"], "resources": ["twittercredentials"], "verbs": ["get", "list", "create", "update", "patch"]});
    grant(&w, "team", "mallory", json!([manage_tcs, {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["bot-keys"], "verbs": ["get"]}])).await;
    let mallory: Api<TwitterCredential> = Api::namespaced(as_user(&w, "mallory").await, "team");
    let resource = |name: &str, source: &str, restart: bool| {
        let mut e = prod().source(source).target(&format!("{name}-out"));
        if restart {
            e = e.restart(WorkloadKind::Deployment, "payments");
        }
        Credential::named(name).environment(e).build()
    };
    // Eventually: the apiserver loads a new policy within seconds. A
    // resource created before that is deleted again (under a new name each
    // try, as the operator's finalizer keeps a deleted one a moment).
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    let err = eventually(
        "the policy to refuse an unreadable source",
        WAIT,
        || async {
            let name = format!(
                "steal-{}",
                attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            match mallory
                .create(
                    &PostParams::default(),
                    &resource(&name, "db-password", false),
                )
                .await
            {
                Err(kube::Error::Api(e)) if e.code == 403 => Some(e),
                Ok(_) => {
                    let _ = Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
                        .delete(&name, &DeleteParams::default())
                        .await;
                    None
                }
                Err(_) => None,
            }
        },
    )
    .await;
    assert_eq!(err.code, 403, "{err:?}");
    assert!(
        err.message.contains("db-password") && err.message.contains("author can read"),
        "{}",
        err.message
    );
    let err = mallory
        .create(
            &PostParams::default(),
            &resource("restart", "bot-keys", true),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("restart what its author can restart"),
        "{err}"
    );
    // What mallory may read and restart, mallory may declare.
    mallory
        .create(&PostParams::default(), &resource("fine", "bot-keys", false))
        .await
        .unwrap();
    // The operator's own writes (finalizer, status) are not blocked.
    w.wait_condition("team", "fine", Some("prod"), "Synced", "True")
        .await;
    let refused = format!(
        "steal-{}-out",
        attempt.load(std::sync::atomic::Ordering::SeqCst) - 1
    );
    assert!(w.secret("team", &refused).await.is_none());

    // Round two, item 1: an annotation that makes the operator act is
    // authorised like the spec. Mallory may patch every TwitterCredential
    // but may not rotate one whose source she could not declare.
    let admins = prod().source("db-password").target("admins-out");
    w.apply("team", Credential::named("admins").environment(admins))
        .await;
    let annotate = |k: &str, v: &str| json!({"metadata": {"annotations": {k: v}}});
    for acting in ["keyguard.dev/rotate-now", "keyguard.dev/force-sync"] {
        let err = mallory
            .patch(
                "admins",
                &PatchParams::default(),
                &Patch::Merge(&annotate(acting, "now")),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("author can read"),
            "{acting}: {err}"
        );
    }
    // An annotation the operator does not act on stays hers to write, and
    // what she may read she may rotate.
    mallory
        .patch(
            "admins",
            &PatchParams::default(),
            &Patch::Merge(&annotate("team/note", "x")),
        )
        .await
        .unwrap();
    mallory
        .patch(
            "fine",
            &PatchParams::default(),
            &Patch::Merge(&annotate("keyguard.dev/rotate-now", "now")),
        )
        .await
        .unwrap();
}

/// Item 6: a tenant who can label a Secret copies a resource's uid into
/// it; deleting the resource never deletes that Secret.
#[tokio::test(flavor = "multi_thread")]
async fn forged_ownership_labels_never_make_the_operator_delete() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("elsewhere", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    w.apply("team", Credential::named("bot").environment(prod()))
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let real = w.secret("team", "out").await.unwrap();
    let uid = tc(&w, "team", "bot").await.uid().unwrap();
    // Everything a person could copy from the real Secret, onto two others.
    for (ns, name) in [("elsewhere", "victim"), ("team", "victim")] {
        let forged: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": real.labels(), "annotations": real.annotations()},
            "stringData": {"data": "precious"}
        }))
        .unwrap();
        Api::<Secret>::namespaced(w.client.clone(), ns)
            .create(&PostParams::default(), &forged)
            .await
            .unwrap();
    }
    assert_eq!(secret_owner(&w, "elsewhere", "victim").await, Some(uid));
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .delete("bot", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the real projection to be removed", WAIT, || async {
        w.secret("team", "out").await.is_none().then_some(())
    })
    .await;
    eventually("the resource to be gone", WAIT, || async {
        Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
            .get_opt("bot")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    for ns in ["elsewhere", "team"] {
        assert!(
            w.secret(ns, "victim").await.is_some(),
            "forged Secret in {ns} must survive"
        );
    }
}

/// Item 8: a namespace that withdraws its opt-in keeps no readable copy.
#[tokio::test(flavor = "multi_thread")]
async fn withdrawn_consent_removes_the_projection() {
    let w = World::start_configured(|ctx| ctx.resync = Duration::from_secs(3600)).await;
    w.namespace("team", &[]).await;
    let allow = [("keyguard.dev/allow-from-team", "true")];
    w.namespace("prod", &allow).await;
    w.namespace("kept", &allow).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let e = prod().target_namespace("prod").service_accounts(["reader"]);
    w.apply("team", Credential::named("bot").environment(e.clone()))
        .await;
    let kept = e.target_namespace("kept");
    w.apply(
        "team",
        Credential::named("retained")
            .deletion_policy(DeletionPolicy::Retain)
            .environment(kept),
    )
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    w.wait_condition("team", "retained", Some("prod"), "Synced", "True")
        .await;

    for ns in ["prod", "kept"] {
        let withdraw = json!({"metadata": {"labels": {"keyguard.dev/allow-from-team": null}}});
        Api::<k8s_openapi::api::core::v1::Namespace>::all(w.client.clone())
            .patch(ns, &PatchParams::default(), &Patch::Merge(&withdraw))
            .await
            .unwrap();
    }
    w.wait_condition("team", "bot", Some("prod"), "TargetNotAllowed", "True")
        .await;
    eventually("Secret, Role and RoleBinding to go", WAIT, || async {
        let role = Api::<Role>::namespaced(w.client.clone(), "prod")
            .get_opt("keyguard-read-out")
            .await
            .ok()?;
        let rb = Api::<RoleBinding>::namespaced(w.client.clone(), "prod")
            .get_opt("keyguard-read-out")
            .await
            .ok()?;
        (w.secret("prod", "out").await.is_none() && role.is_none() && rb.is_none()).then_some(())
    })
    .await;
    let c = w
        .wait_condition("team", "retained", Some("prod"), "TargetNotAllowed", "True")
        .await;
    assert!(c.message.contains("retained"), "{c:?}");
    eventually(
        "the Role and RoleBinding of the retained Secret to go",
        WAIT,
        || async {
            let role = Api::<Role>::namespaced(w.client.clone(), "kept")
                .get_opt("keyguard-read-out")
                .await
                .ok()?;
            let rb = Api::<RoleBinding>::namespaced(w.client.clone(), "kept")
                .get_opt("keyguard-read-out")
                .await
                .ok()?;
            (role.is_none() && rb.is_none()).then_some(())
        },
    )
    .await;
    assert!(
        w.secret("kept", "out").await.is_some(),
        "Retain keeps the Secret"
    );
}

/// Item 9: inputs that appear after the resource trigger it at once (the
/// operator's resync here is an hour).
#[tokio::test(flavor = "multi_thread")]
async fn late_namespaces_labels_and_sources_trigger_a_sync() {
    let w = World::start_configured(|ctx| ctx.resync = Duration::from_secs(3600)).await;
    w.namespace("team", &[]).await;
    w.apply(
        "team",
        Credential::named("bot").environment(prod().target_namespace("late")),
    )
    .await;
    w.wait_condition("team", "bot", Some("prod"), "TargetNotAllowed", "True")
        .await;
    w.namespace("late", &[]).await;
    let label = json!({"metadata": {"labels": {"keyguard.dev/allow-from-team": "true"}}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(w.client.clone())
        .patch("late", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let c = w
        .wait_condition("team", "bot", Some("prod"), "Synced", "False")
        .await;
    let c = if c.reason == "SourceNotFound" {
        c
    } else {
        eventually("the opt-in to be noticed", WAIT, || async {
            let s = w.status("team", "bot").await;
            let c = s.environments.first()?.condition("Synced")?.clone();
            (c.reason == "SourceNotFound").then_some(c)
        })
        .await
    };
    assert_eq!(c.reason, "SourceNotFound");
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let source = w.secret("team", "keys").await.unwrap();
    assert!(
        source
            .labels()
            .keys()
            .chain(source.annotations().keys())
            .all(|k| !k.starts_with("keyguard.dev/")),
        "the operator never writes to a source Secret: {:?} {:?}",
        source.labels(),
        source.annotations()
    );
}

/// Item 10: a tenant strips the finalizer and deletes the resource: the
/// copies are swept, and a resource re-created under the same name syncs.
#[tokio::test(flavor = "multi_thread")]
async fn a_stripped_finalizer_leaves_no_orphans() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("prod", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "keys", &w.full_source()).await;
    let e = prod()
        .target_namespace("prod")
        .keys([BearerToken])
        .service_accounts(["reader"]);
    let resource = Credential::named("bot").environment(e);
    w.apply("team", resource.clone()).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    strip_finalizer_and_delete(&w, "team", "bot").await;
    eventually("the orphans to be swept", WAIT, || async {
        let role = Api::<Role>::namespaced(w.client.clone(), "prod")
            .get_opt("keyguard-read-out")
            .await
            .ok()?;
        let states = Api::<Secret>::namespaced(w.client.clone(), "team")
            .list(&ListParams::default().labels("keyguard.dev/part=state"))
            .await
            .ok()?;
        (w.secret("prod", "out").await.is_none() && role.is_none() && states.items.is_empty())
            .then_some(())
    })
    .await;
    w.apply("team", resource).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
}

/// Round two, item 6: a namespace of 53 to 63 characters can opt in too.
/// Its `allow-from-<ns>` key would be too long for a label, so the hashed
/// key stands in, and the refusal names exactly which key to set.
#[tokio::test]
async fn a_namespace_with_a_long_name_can_opt_in() {
    let w = World::start().await;
    let team = "t".repeat(63);
    w.namespace(&team, &[]).await;
    w.namespace("prod", &[]).await;
    w.source(&team, "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let e = prod().target_namespace("prod");
    w.apply(&team, Credential::named("bot").environment(e))
        .await;
    let refused = w
        .wait_condition(&team, "bot", Some("prod"), "Synced", "False")
        .await;
    let key = keyguard_operator::labels::allow_from(&team);
    assert!(key.len() < 63 + "keyguard.dev/".len(), "{key}");
    assert!(
        refused.message.contains(&key),
        "the refusal names the key to set: {refused:?}"
    );
    let label = json!({"metadata": {"labels": {key: "true"}}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(w.client.clone())
        .patch("prod", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("the opt-in label is a valid label");
    w.wait_condition(&team, "bot", Some("prod"), "Synced", "True")
        .await;
    assert!(w.secret("prod", "out").await.is_some());
}

/// `deletionPolicy: Retain` is kept even when the resource vanished while
/// the operator was down (finalizer stripped): the start-up sweep releases
/// the projected Secret instead of deleting it, and removes the rest.
#[tokio::test]
async fn retain_is_kept_by_the_start_up_sweep() {
    let mut w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    let resource = Credential::named("bot")
        .deletion_policy(DeletionPolicy::Retain)
        .environment(prod().service_accounts(["reader"]));
    w.apply("team", resource).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    w.operator.take().unwrap().stop().await;
    strip_finalizer_and_delete(&w, "team", "bot").await;
    w.operator = Some(keyguard_tests::operator::RunningOperator::start(&w.cp, &w.x).await);
    eventually("the start-up sweep to remove the Role", WAIT, || async {
        let role = Api::<Role>::namespaced(w.client.clone(), "team")
            .get_opt("keyguard-read-out")
            .await
            .ok()?;
        role.is_none().then_some(())
    })
    .await;
    // The sweep removes access (the Role) before it releases the Secret:
    // wait for the release too, rather than race it.
    let kept = eventually(
        "the retained Secret to be released from management",
        WAIT,
        || async {
            let kept = w
                .secret("team", "out")
                .await
                .expect("deletionPolicy Retain: the projected Secret is kept");
            (!kept.labels().contains_key("app.kubernetes.io/managed-by")).then_some(kept)
        },
    )
    .await;
    let labels = kept.labels();
    assert!(
        !labels.contains_key("app.kubernetes.io/managed-by"),
        "the retained Secret is released from management: {labels:?}"
    );
    assert!(value(&kept, "apiKey").is_some(), "its values stay");
}

/// A reconcile already running when its resource is deleted with the
/// finalizer stripped writes after the orphan sweep ran: it finds the
/// resource gone when it writes status, and removes what it wrote. Made
/// exact here: the operator is stopped, the sweep's work done by hand, and
/// the in-flight reconcile run on the copy it held.
#[tokio::test(flavor = "multi_thread")]
async fn a_reconcile_in_flight_at_deletion_leaves_no_orphans() {
    let mut w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply("team", Credential::named("bot").environment(prod()))
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let in_flight = tc(&w, "team", "bot").await;
    w.operator.take().unwrap().stop().await;
    strip_finalizer_and_delete(&w, "team", "bot").await;
    let secrets = Api::<Secret>::namespaced(w.client.clone(), "team");
    secrets
        .delete("out", &DeleteParams::default())
        .await
        .unwrap();

    let xapi =
        keyguard_operator::xapi::XApiClient::new(w.x.base_url(), Duration::from_secs(5)).unwrap();
    let ctx = keyguard_operator::context::Context::new(
        w.cp.client().await.unwrap(),
        xapi,
        keyguard_operator::metrics::Metrics::default(),
        keyguard_tests::operator::test_claim_key(),
    );
    let result = keyguard_operator::reconcile::reconcile(
        std::sync::Arc::new(in_flight),
        std::sync::Arc::new(ctx),
    )
    .await;
    assert!(result.is_ok(), "{:?}", result.err());
    assert!(
        secrets.get_opt("out").await.unwrap().is_none(),
        "the target it wrote is removed"
    );
}

/// The sweep after a start removes what was orphaned while the operator
/// was not running.
#[tokio::test(flavor = "multi_thread")]
async fn orphans_made_while_the_operator_was_down_are_swept_at_start() {
    let mut w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    w.apply("team", Credential::named("bot").environment(prod()))
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    w.operator.take().unwrap().stop().await;
    strip_finalizer_and_delete(&w, "team", "bot").await;
    assert!(w.secret("team", "out").await.is_some());
    w.operator = Some(keyguard_tests::operator::RunningOperator::start(&w.cp, &w.x).await);
    eventually("the orphan to be swept", WAIT, || async {
        w.secret("team", "out").await.is_none().then_some(())
    })
    .await;
}

/// Item 11: a write the apiserver refuses is a condition and a Warning
/// Event, never Ready=True with a stale generation.
#[tokio::test(flavor = "multi_thread")]
async fn failed_writes_are_conditions_and_warnings() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    w.apply("team", Credential::named("bot").environment(prod()))
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    // Every write to the target is refused by the apiserver (an admission
    // policy; an immutable Secret no longer does it: the operator recreates
    // those).
    freeze_secret(&w, "team", "out").await;
    w.source("team", "keys", &[("apiKey", "CCCCCCCCCCCCCCCCCCCCCCCCC")])
        .await;
    let c = w
        .wait_condition("team", "bot", None, "Ready", "False")
        .await;
    assert_eq!(c.reason, "WriteFailed", "{c:?}");
    let generation = tc(&w, "team", "bot").await.metadata.generation;
    assert_eq!(
        w.status("team", "bot").await.observed_generation,
        generation
    );
    let warnings = eventually("a WriteFailed Event", WAIT, || async {
        let e = events(&w, "team", "WriteFailed").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    let note = warnings[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("team/out") || note.contains("Secret out"),
        "{note}"
    );
    assert!(
        !note.contains("CCCCCCCCCCCCCCCCCCCCCCCCC") && !note.contains("AAAAAAAAAAAAAAAAAAAAAAAAA")
    );
}

/// A ValidatingAdmissionPolicy that refuses every write to Secret
/// `namespace/name`; returns once the apiserver enforces it.
async fn freeze_secret(w: &World, namespace: &str, name: &str) {
    let policy = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: freeze-{name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: [UPDATE, DELETE]
        resources: [secrets]
  validations:
    - expression: "(object != null ? object.metadata.name : oldObject.metadata.name) != '{name}' || request.namespace != '{namespace}'"
      message: "{namespace}/{name} is frozen"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: freeze-{name}}}
spec:
  policyName: freeze-{name}
  validationActions: [Deny]
"#
    );
    let mut child =
        w.cp.kubectl()
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(policy.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let secrets = Api::<Secret>::namespaced(w.client.clone(), namespace);
    eventually("the freeze to be enforced", WAIT, || async {
        let touch = json!({"metadata": {"annotations": {"test/touch": "1"}}});
        match secrets
            .patch(name, &PatchParams::default(), &Patch::Merge(&touch))
            .await
        {
            Err(kube::Error::Api(e)) if e.message.contains("frozen") => Some(()),
            _ => None,
        }
    })
    .await;
}

/// Item 12: a 253-character resource name still gets Events, and a deleted
/// resource's metric series go away.
#[tokio::test(flavor = "multi_thread")]
async fn long_names_get_events_and_deleted_resources_leave_no_metrics() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let long = "b".repeat(253);
    w.apply("team", Credential::named(&long).environment(prod()))
        .await;
    w.wait_condition("team", &long, Some("prod"), "Synced", "True")
        .await;
    eventually("an Event about the long-named resource", WAIT, || async {
        let evs = events(&w, "team", "Synced").await;
        evs.iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(long.as_str()))
            .then_some(())
    })
    .await;
    // Also visible the way `kubectl describe` finds them.
    let core = Api::<CoreEvent>::namespaced(w.client.clone(), "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(core
        .items
        .iter()
        .any(|e| e.involved_object.name.as_deref() == Some(long.as_str())));
    let metrics = &w.operator.as_ref().unwrap().metrics;
    assert!(metrics.render().contains(&long));
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .delete(&long, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted resource's series to go", WAIT, || async {
        (!metrics.render().contains(&long)).then_some(())
    })
    .await;
}

/// Round two, item 2: consent over time. A resource held to a
/// ServiceAccount projects only while that ServiceAccount may read its
/// source: removing its RoleBinding stops new values (`ConsentWithdrawn`,
/// what is projected is kept), and granting it again resumes. A resource
/// not held to one is unaffected.
#[tokio::test(flavor = "multi_thread")]
async fn consent_is_the_service_account_s_and_can_be_withdrawn() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "keyguard-bot"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(w.client.clone(), "team")
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let role: Role = serde_json::from_value(json!({"metadata": {"name": "read-keys"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["keys"], "verbs": ["get"]}]}))
    .unwrap();
    Api::<Role>::namespaced(w.client.clone(), "team")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "read-keys"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-keys"},
        "subjects": [{"kind": "ServiceAccount", "name": "keyguard-bot", "namespace": "team"}]}))
    .unwrap();
    let bindings = Api::<RoleBinding>::namespaced(w.client.clone(), "team");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let held = |name: &str, secret: &str, sa: Option<&str>| {
        let resource = Credential::named(name).environment(prod().target(secret));
        match sa {
            Some(sa) => resource.service_account_name(sa),
            None => resource,
        }
    };
    w.apply("team", held("bot", "out", Some("keyguard-bot")))
        .await;
    w.apply("team", held("free", "free-out", None)).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;

    let granted = may_get(&w, "team", "keyguard-bot", "keys").await;
    assert_eq!(granted, Some(true), "the binding grants it");
    bindings
        .delete("read-keys", &DeleteParams::default())
        .await
        .unwrap();
    // The apiserver's authorizer follows RBAC from its own watch: until it
    // has seen the deletion, its answer (the operator's contract) is still
    // yes, and a change made in that window is projected by right.
    eventually("the authorizer to see the binding gone", WAIT, || async {
        (!may_get(&w, "team", "keyguard-bot", "keys").await?).then_some(())
    })
    .await;
    w.source("team", "keys", &[("apiKey", "BBBBBBBBBBBBBBBBBBBBBBBBB")])
        .await;
    let refused = w
        .wait_condition("team", "bot", Some("prod"), "Synced", "False")
        .await;
    assert_eq!(refused.reason, "ConsentWithdrawn", "{refused:?}");
    assert!(
        refused.message.contains("ServiceAccount team/keyguard-bot"),
        "{refused:?}"
    );
    eventually(
        "the unheld resource to project the new value",
        WAIT,
        || async {
            let v = value(&w.secret("team", "free-out").await?, "apiKey")?;
            (v == "BBBBBBBBBBBBBBBBBBBBBBBBB").then_some(())
        },
    )
    .await;
    assert_eq!(
        value(&w.secret("team", "out").await.unwrap(), "apiKey").unwrap(),
        "AAAAAAAAAAAAAAAAAAAAAAAAA",
        "nothing new is projected without consent; what was is kept"
    );

    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    eventually("the authorizer to see the binding back", WAIT, || async {
        may_get(&w, "team", "keyguard-bot", "keys")
            .await?
            .then_some(())
    })
    .await;
    w.source("team", "keys", &[("apiKey", "CCCCCCCCCCCCCCCCCCCCCCCCC")])
        .await;
    eventually("consent given again, the new value", WAIT, || async {
        let v = value(&w.secret("team", "out").await?, "apiKey")?;
        (v == "CCCCCCCCCCCCCCCCCCCCCCCCC").then_some(())
    })
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
}

/// Whether the apiserver says the ServiceAccount `namespace/sa` may `get`
/// the Secret `name` of its namespace (a SubjectAccessReview, as the
/// operator asks it); `None` when it cannot say.
async fn may_get(w: &World, namespace: &str, sa: &str, name: &str) -> Option<bool> {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": format!("system:serviceaccount:{namespace}:{sa}"),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}")],
            "resourceAttributes": {"namespace": namespace, "verb": "get", "resource": "secrets", "name": name},
        }
    }))
    .ok()?;
    let answer = Api::<SubjectAccessReview>::all(w.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .ok()?;
    Some(answer.status?.allowed)
}

/// Round two, item 10: a claim binds an object's identity (kind,
/// namespace, name, owner), not its content or uid, so someone who may
/// write that kind in that namespace can delete a claimed object and
/// re-create it with the claim copied. It gains them nothing: they could
/// already edit the claimed object itself, and the operator puts back
/// exactly what it declares. Shown here while the operator was down, for
/// the target Secret (a planted key, a changed value) and the RoleBinding
/// (an extra subject).
#[tokio::test(flavor = "multi_thread")]
async fn a_re_created_copy_of_a_claimed_object_gains_nothing() {
    let mut w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("prod", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let e = prod().target_namespace("prod").service_accounts(["app"]);
    w.apply("team", Credential::named("bot").environment(e))
        .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    drop(w.operator.take());

    let secrets = Api::<Secret>::namespaced(w.client.clone(), "prod");
    let bindings = Api::<RoleBinding>::namespaced(w.client.clone(), "prod");
    let fresh = |meta: &mut kube::api::ObjectMeta| {
        meta.uid = None;
        meta.resource_version = None;
        meta.creation_timestamp = None;
        meta.managed_fields = None;
    };
    let mut copy = secrets.get("out").await.unwrap();
    fresh(&mut copy.metadata);
    copy.data = Some(BTreeMap::from([
        (
            "apiKey".into(),
            k8s_openapi::ByteString(b"planted-value".to_vec()),
        ),
        ("planted".into(), k8s_openapi::ByteString(b"x".to_vec())),
    ]));
    secrets
        .delete("out", &DeleteParams::default())
        .await
        .unwrap();
    secrets.create(&PostParams::default(), &copy).await.unwrap();
    let mut binding = bindings.get("keyguard-read-out").await.unwrap();
    fresh(&mut binding.metadata);
    let mut subjects = binding.subjects.clone().unwrap();
    let mut intruder = subjects[0].clone();
    intruder.name = "intruder".into();
    subjects.push(intruder);
    binding.subjects = Some(subjects);
    bindings
        .delete("keyguard-read-out", &DeleteParams::default())
        .await
        .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    w.operator = Some(keyguard_tests::operator::RunningOperator::start(&w.cp, &w.x).await);
    w.wait_secret("prod", "out", "exactly the declared content back", |s| {
        keyguard_tests::world::keys(s) == ["apiKey"]
            && value(s, "apiKey").as_deref() == Some("AAAAAAAAAAAAAAAAAAAAAAAAA")
    })
    .await;
    eventually("only the declared subject", WAIT, || async {
        let b = bindings.get("keyguard-read-out").await.ok()?;
        let names: Vec<String> = b.subjects?.into_iter().map(|s| s.name).collect();
        (names == ["app"]).then_some(())
    })
    .await;
}

/// The README: a missing target namespace and an unwilling one give the
/// same message, so a tenant cannot probe which namespaces exist.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_namespace_and_an_unwilling_one_look_the_same() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("closed", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let resource = |name: &str, target: &str| {
        Credential::named(name).environment(prod().target_namespace(target))
    };
    w.apply("team", resource("to-ghost", "ghost")).await;
    w.apply("team", resource("to-closed", "closed")).await;
    let ghost = w
        .wait_condition("team", "to-ghost", Some("prod"), "TargetNotAllowed", "True")
        .await;
    let closed = w
        .wait_condition(
            "team",
            "to-closed",
            Some("prod"),
            "TargetNotAllowed",
            "True",
        )
        .await;
    assert_eq!(ghost.reason, closed.reason);
    let text = |c: &Condition, ns: &str| c.message.replace(ns, "<namespace>");
    assert_eq!(text(&ghost, "ghost"), text(&closed, "closed"));
}
