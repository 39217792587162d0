//! The chart's RBAC is least privilege, proven: with every rule the
//! operator (authenticated as the chart's ServiceAccount) does a whole job;
//! without any one rule, a named part of that job fails. And namespaced
//! mode: the operator writes only where a namespace granted it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding};
use keyguard_operator::leader::LeaderElection;
use keyguard_operator::TwitterCredential;
use keyguard_tests::conflicts::Conflicts;
use keyguard_tests::credential::{Credential, CredentialKey::BearerToken, Env};
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::operator::RunningOperator;
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};
use keyguard_tests::ControlPlane;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::chart::helm;

const NS: &str = "keyguard-system";

async fn install(cp: &ControlPlane, sets: &[&str]) -> (Client, Client) {
    let (admin, config) = install_config(cp, sets).await;
    (admin, Client::try_from(config).unwrap())
}

/// Installs the chart; the admin client and the operator's configuration
/// (as the chart's ServiceAccount).
async fn install_config(cp: &ControlPlane, sets: &[&str]) -> (Client, kube::Config) {
    let mut args = vec![
        "install",
        "kg",
        "charts/twitter-keyguard",
        "-n",
        NS,
        "--create-namespace",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let (ok, out, err) = helm(Some(cp), &args);
    assert!(ok, "helm install failed: {out}{err}");
    let admin = cp.client().await.unwrap();
    keyguard_tests::kube_helpers::wait_established(&admin, "twittercredentials.keyguard.dev").await;
    let kubeconfig = cp.service_account_kubeconfig(NS, "kg").await.unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    keyguard_operator::ownership::load_or_create_key(
        Client::try_from(config.clone()).unwrap(),
        NS,
        "keyguard-operator-claim-key",
    )
    .await
    .expect("the chart lets the operator create and read its claim key");
    (admin, config)
}

/// What one run of the operator achieved for a fresh resource.
#[derive(Debug, Default, Clone, Copy)]
struct Job {
    finalizer: bool,
    status: bool,
    secret: bool,
    binding: bool,
    restarted: bool,
    ready: bool,
    event: bool,
}

impl Job {
    fn complete(&self) -> bool {
        self.finalizer
            && self.status
            && self.secret
            && self.binding
            && self.restarted
            && self.ready
            && self.event
    }
}

/// A resource in `team-<n>` projecting into `prod-<n>` with access RBAC, a
/// restart target and Events. The operator runs until the job is complete
/// or, without the rule on `missing`, until the apiserver refused it that
/// rule and the job got as far as it can without it: decided by what the
/// operator met and did, never by how long it took.
async fn job(
    admin: &Client,
    config: &kube::Config,
    x: &XApiEmulator,
    n: usize,
    missing: Option<&str>,
) -> Job {
    let (team, prod) = (format!("team-{n}"), format!("prod-{n}"));
    let opt_in = format!("keyguard.dev/allow-from-{team}");
    fixtures::create_namespace(admin, &team, &[]).await;
    fixtures::create_namespace(admin, &prod, &[(opt_in.as_str(), "true")]).await;
    let app = x.create_app(AccessLevel::Read);
    fixtures::apply_consumer_keys(admin, &team, "keys", &app).await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &prod);
    deployments
        .create(&PostParams::default(), &fixtures::deployment("bot"))
        .await
        .unwrap();
    fixtures::apply_credential(admin, &team, fixtures::chart_job(&prod)).await;
    let credentials: Api<TwitterCredential> = Api::namespaced(admin.clone(), &team);

    let recorder = Conflicts::none();
    let operator = recorder.client(config.clone()).unwrap();
    let election = LeaderElection::new(operator.clone(), NS, "kg", "kg-0", Duration::from_secs(5));
    let running = RunningOperator::start_with(operator, x, Some(election)).await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &prod);
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &prod);
    let events: Api<Event> = Api::namespaced(admin.clone(), &team);
    let look = || async {
        let tc = credentials.get("bot").await.unwrap();
        let restarted = deployments
            .get("bot")
            .await
            .unwrap()
            .spec
            .unwrap()
            .template
            .metadata
            .and_then(|m| m.annotations)
            .is_some_and(|a| a.contains_key(keyguard_operator::labels::RESTARTED_FOR));
        Job {
            finalizer: !tc.finalizers().is_empty(),
            status: tc.status.is_some(),
            ready: tc.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            }),
            secret: secrets.get_opt("x").await.unwrap().is_some(),
            binding: !bindings
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty(),
            restarted,
            event: events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| e.reason.as_deref() == Some("Synced")),
        }
    };
    // A restart follows a change of what was projected: once the first
    // sync is Ready, the source gets another app's keys.
    let mut changed_at = None;
    let decided = |seen: &Job, changed_at: Option<std::time::Instant>| match missing {
        None => seen.complete(),
        Some(rule) => seen.complete() || refused_and_stuck(rule, seen, changed_at, &recorder),
    };
    let started = std::time::Instant::now();
    let mut seen = look().await;
    while !decided(&seen, changed_at) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "undecided without the rule on {missing:?}: {seen:?}, refused {:?}",
            recorder.denied()
        );
        if seen.ready && changed_at.is_none() {
            let next = x.create_app(AccessLevel::Read);
            fixtures::apply_consumer_keys(admin, &team, "keys", &next).await;
            changed_at = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        seen = look().await;
    }
    running.stop().await;
    seen
}

/// How long the job gets after the apiserver first refused the missing
/// rule, to show whether the operator gets further without it. Only that
/// refusal starts it: a slow machine cannot end a run before the rule was
/// needed, and the run with every rule has no budget at all.
const AFTER_REFUSAL: Duration = Duration::from_secs(5);

/// Whether the apiserver refused the operator the missing rule (on
/// `deployments`: after the change that asks for a restart) at least
/// [`AFTER_REFUSAL`] ago, and the parts that need no such rule are done.
fn refused_and_stuck(
    rule: &str,
    job: &Job,
    changed_at: Option<std::time::Instant>,
    recorder: &Conflicts,
) -> bool {
    let kinds: Vec<&str> = rule.split(',').collect();
    let (since, done) = match rule {
        "deployments,statefulsets,daemonsets" => match changed_at {
            Some(at) => (Some(at), job.secret),
            None => return false,
        },
        "events" => (None, job.ready),
        _ => (None, true),
    };
    done && recorder
        .first_denied(&kinds, since)
        .is_some_and(|at| at.elapsed() >= AFTER_REFUSAL)
}

fn names(rule: &PolicyRule) -> String {
    rule.resources.clone().unwrap_or_default().join(",")
}

/// Waits until the ServiceAccount lost `verb` on `resource` (RBAC is read
/// from an informer in the apiserver).
async fn wait_denied(admin: &Client, namespace: &str, group: &str, resource: &str, verb: &str) {
    let reviews: Api<SubjectAccessReview> = Api::all(admin.clone());
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let review: SubjectAccessReview = serde_json::from_value(json!({"spec": {
        "user": format!("system:serviceaccount:{NS}:kg"),
        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{NS}"), "system:authenticated"],
        "resourceAttributes": {"group": group, "resource": resource, "subresource": subresource,
            "verb": verb, "namespace": namespace}}}))
    .unwrap();
    eventually(
        "the rule's removal to take effect",
        Duration::from_secs(10),
        || async {
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .unwrap();
            (!answer.status?.allowed).then_some(())
        },
    )
    .await;
}

/// Replaces the rules of the chart's ClusterRole or leader-election Role.
async fn set_rules(admin: &Client, role: &str, rules: &[PolicyRule]) {
    let patch = Patch::Merge(json!({ "rules": rules }));
    let params = PatchParams::default();
    let result = match role {
        "ClusterRole" => Api::<ClusterRole>::all(admin.clone())
            .patch("kg", &params, &patch)
            .await
            .map(|_| ()),
        _ => Api::<Role>::namespaced(admin.clone(), NS)
            .patch("kg-leader-election", &params, &patch)
            .await
            .map(|_| ()),
    };
    result.unwrap();
}

/// Which part of the job fails without each rule, by the rule's resources.
fn expect_broken(resources: &str, job: &Job) -> Result<(), String> {
    let ok = match resources {
        "twittercredentials" => !job.finalizer && !job.status,
        "twittercredentials/status" => job.finalizer && !job.status,
        "namespaces" => !job.secret,
        "secrets" => !job.secret,
        "roles,rolebindings" => !job.binding && !job.ready,
        "deployments,statefulsets,daemonsets" => job.secret && !job.restarted,
        "events" => job.ready && !job.event,
        "leases" => !job.finalizer && !job.status,
        other => {
            return Err(format!(
                "no named behaviour for the rule on {other}: is it needed?"
            ))
        }
    };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "without the rule on {resources} the job was {job:?}"
        )),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rule_of_the_charts_rbac_is_needed() {
    let cp = ControlPlane::start().await.unwrap();
    let (admin, config) = install_config(&cp, &[]).await;
    let x = XApiEmulator::start().await;

    let baseline = job(&admin, &config, &x, 0, None).await;
    assert!(baseline.complete(), "with every rule: {baseline:?}");

    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    let roles: Api<Role> = Api::namespaced(admin.clone(), NS);
    let cluster_rules = cluster_roles.get("kg").await.unwrap().rules.unwrap();
    let role_rules = roles
        .get("kg-leader-election")
        .await
        .unwrap()
        .rules
        .unwrap();
    let mut run = 1;
    let mut failures = Vec::new();
    for (role, rules) in [("ClusterRole", &cluster_rules), ("Role", &role_rules)] {
        for (i, rule) in rules.iter().enumerate() {
            let mut fewer = rules.clone();
            fewer.remove(i);
            set_rules(&admin, role, &fewer).await;
            let group = rule.api_groups.clone().unwrap_or_default().join("");
            let first = rule.resources.as_ref().unwrap()[0].clone();
            let namespace = if role == "Role" { NS } else { "team-0" };
            wait_denied(&admin, namespace, &group, &first, &rule.verbs[0]).await;

            let seen = job(&admin, &config, &x, run, Some(&names(rule))).await;
            if let Err(e) = expect_broken(&names(rule), &seen) {
                failures.push(format!("{role} rule {i}: {e}"));
            }
            run += 1;

            set_rules(&admin, role, rules).await;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(run, cluster_rules.len() + role_rules.len() + 1);
}

/// Namespaced mode: rights only through RoleBindings in the listed
/// namespaces; a namespace that did not grant them cannot be written, and
/// resources or targets outside get a condition.
#[tokio::test(flavor = "multi_thread")]
async fn namespaced_mode_writes_only_where_granted() {
    let cp = ControlPlane::start().await.unwrap();
    let admin = cp.client().await.unwrap();
    let opt_in = [("keyguard.dev/allow-from-team", "true")];
    for (name, labels) in [
        ("team", &[][..]),
        ("prod", &opt_in[..]),
        // Opted in by label, but never granted the operator rights.
        ("elsewhere", &opt_in[..]),
        ("other", &[][..]),
    ] {
        fixtures::create_namespace(&admin, name, labels).await;
    }
    let (admin, operator) = install(
        &cp,
        &["rbac.namespaced=true", "rbac.namespaces={team,prod}"],
    )
    .await;

    // Even a compromised operator cannot write where it was not granted.
    let probe: Secret =
        serde_json::from_value(json!({"metadata": {"name": "probe"}, "stringData": {"a": "b"}}))
            .unwrap();
    for ns in ["elsewhere", "other", "default"] {
        let result = Api::<Secret>::namespaced(operator.clone(), ns)
            .create(&PostParams::default(), &probe)
            .await;
        assert!(
            matches!(result, Err(kube::Error::Api(ref s)) if s.code == 403),
            "the operator could write a Secret in {ns}: {result:?}"
        );
    }
    let all = Api::<Secret>::all(operator.clone())
        .list(&ListParams::default())
        .await;
    assert!(matches!(all, Err(kube::Error::Api(ref s)) if s.code == 403));

    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    for ns in ["team", "other"] {
        fixtures::apply_consumer_keys(&admin, ns, "keys", &app).await;
    }
    let resource = |target: &str| {
        Credential::named(&format!("to-{target}")).environment(
            Env::new("production")
                .source("keys")
                .target_namespace(target)
                .target("x")
                .keys([BearerToken]),
        )
    };
    for (ns, target) in [("team", "prod"), ("team", "elsewhere"), ("other", "other")] {
        fixtures::apply_credential(&admin, ns, resource(target)).await;
    }
    let team: Api<TwitterCredential> = Api::namespaced(admin.clone(), "team");
    let other: Api<TwitterCredential> = Api::namespaced(admin.clone(), "other");

    let running = RunningOperator::start_configured(operator.clone(), &x, None, |ctx| {
        ctx.scope = keyguard_operator::scope::Scope::from_list(&["team".into(), "prod".into()]);
    })
    .await;
    eventually(
        "the granted target synced",
        Duration::from_secs(30),
        || async {
            Api::<Secret>::namespaced(admin.clone(), "prod")
                .get_opt("x")
                .await
                .ok()?
        },
    )
    .await;
    let condition = |api: Api<TwitterCredential>, name: &'static str, type_: &'static str| async move {
        eventually(
            &format!("{name}: {type_}"),
            Duration::from_secs(30),
            || async {
                let tc = api.get(name).await.ok()?;
                let status = tc.status?;
                // An environment's own condition first: the resource-level
                // one only lists the environments.
                let own = status.conditions.iter();
                status
                    .environments
                    .iter()
                    .flat_map(|e| e.conditions.iter())
                    .chain(own)
                    .find(|c| {
                        c.type_ == type_
                            && c.status == if type_ == "Ready" { "False" } else { "True" }
                    })
                    .map(|c| (c.reason.clone(), c.message.clone()))
            },
        )
        .await
    };
    let (reason, message) = condition(team.clone(), "to-elsewhere", "TargetNotAllowed").await;
    assert_eq!(reason, "TargetNotAllowed");
    assert!(message.contains("namespaced mode"), "{message}");
    let (reason, message) = condition(other.clone(), "to-other", "Ready").await;
    assert_eq!(reason, "NamespaceNotManaged");
    assert!(message.contains("manages only prod, team"), "{message}");
    assert!(
        other.get("to-other").await.unwrap().finalizers().is_empty(),
        "no finalizer on a resource it does not manage"
    );
    for ns in ["elsewhere", "other"] {
        assert!(Api::<Secret>::namespaced(admin.clone(), ns)
            .get_opt("x")
            .await
            .unwrap()
            .is_none());
    }
    running.stop().await;
}
