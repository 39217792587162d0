//! The reconcile loop: for each TwitterCredential, inside a finalizer,
//! project every environment's credentials into its target Secret with a
//! Role and RoleBinding, restart declared workloads after a change, remove
//! what is no longer declared, and report status, conditions and Events.
//!
//! Watches: TwitterCredentials, and (metadata only, by label) the Secrets
//! the operator manages or reads, so memory does not grow with the
//! cluster's Secrets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::ByteString;
use keyguard_credentials::{CredentialKey, SecretValue};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::conditions;
use crate::labels::{self, FIELD_MANAGER, FINALIZER, MANAGED_BY};
use crate::metrics::Metrics;
use crate::projection::{self, Data};
use crate::resource::{
    DeletionPolicy, Environment, EnvironmentStatus, TwitterCredential, TwitterCredentialStatus,
    WorkloadKind,
};
use crate::xapi::XApiClient;
use crate::{Error, Result};

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub xapi: XApiClient,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// How often a healthy resource is checked again without any change.
    pub resync: Duration,
    /// How soon an environment that failed transiently is tried again.
    pub retry: Duration,
}

impl Context {
    pub fn new(client: Client, xapi: XApiClient, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: "keyguard-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            xapi,
            metrics,
            resync: Duration::from_secs(600),
            retry: Duration::from_secs(30),
        }
    }
}

fn owner_of(meta: &ObjectMeta) -> Option<ObjectRef<TwitterCredential>> {
    let owner = meta.annotations.as_ref()?.get(labels::OWNER)?;
    let (ns, name) = owner.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

fn readers_of(meta: &ObjectMeta) -> Vec<ObjectRef<TwitterCredential>> {
    let ns = meta.namespace.clone().unwrap_or_default();
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(labels::REFERENCED_BY))
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| ObjectRef::new(n).within(&ns))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let credentials: Api<TwitterCredential> = Api::all(client.clone());
    // Metadata only: labels and annotations are all the mapping needs.
    let secrets: Api<PartialObjectMeta<Secret>> = Api::all(client.clone());
    let managed = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let sources = watcher::Config::default().labels(labels::SOURCE);
    Controller::new(credentials, watcher::Config::default().any_semantic())
        .watches(secrets.clone(), managed, |s| owner_of(&s.metadata))
        .watches(secrets, sources, |s| readers_of(&s.metadata))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "reconcile failed");
            }
        })
        .await;
}

fn error_policy(tc: Arc<TwitterCredential>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(name = %tc.name_any(), namespace = ?tc.namespace(), %error, "will retry");
    ctx.metrics.reconcile_failed(&tc);
    Action::requeue(Duration::from_secs(15))
}

/// The reconcile entry point: apply or clean up, inside the finalizer.
pub async fn reconcile(tc: Arc<TwitterCredential>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let ns = tc.namespace().ok_or(Error::Invalid(
        "TwitterCredential without a namespace".into(),
    ))?;
    let api: Api<TwitterCredential> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, tc.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(tc) => apply(&tc, &ctx).await,
            FinalizerEvent::Cleanup(tc) => cleanup(&tc, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(&tc, started.elapsed());
    result
}

/// What one environment's sync found.
struct EnvOutcome {
    status: EnvironmentStatus,
    /// The projected content changed in this reconcile.
    changed: bool,
    /// A transient failure (X API rate limit, 5xx, network): check again
    /// soon rather than at the next resync.
    retry_soon: bool,
}

async fn apply(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    let previous: HashMap<String, EnvironmentStatus> = tc
        .status
        .as_ref()
        .map(|s| {
            s.environments
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut outcomes = Vec::new();
    for env in &tc.spec.environments {
        let prev = previous
            .get(&env.name)
            .cloned()
            .unwrap_or_else(|| EnvironmentStatus {
                name: env.name.clone(),
                ..Default::default()
            });
        outcomes.push((env, sync_environment(tc, env, prev, ctx).await?));
    }
    // Objects become undeclared only when the spec changes; status records
    // the generation after cleanup, so a crash in between cleans up later.
    let observed = tc.status.as_ref().and_then(|s| s.observed_generation);
    if observed.is_none() || observed != tc.metadata.generation {
        remove_undeclared(tc, ctx).await?;
    }
    restart_workloads(tc, &outcomes, ctx).await;

    let generation = tc.metadata.generation;
    let mut status = tc.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    status.environments = outcomes.iter().map(|(_, o)| o.status.clone()).collect();
    let synced = status
        .environments
        .iter()
        .filter(|e| conditions::is_true(&e.conditions, "Synced"))
        .count();
    let total = status.environments.len();
    status.ready_environments = Some(format!("{synced}/{total}"));
    let failing: Vec<String> = status
        .environments
        .iter()
        .filter(|e| !conditions::is_true(&e.conditions, "Synced"))
        .map(|e| {
            let why = e
                .conditions
                .iter()
                .find(|c| c.type_ == "Synced")
                .map(|c| c.message.clone())
                .unwrap_or_default();
            format!("{}: {why}", e.name)
        })
        .collect();
    let (reason, message) = if failing.is_empty() {
        ("Synced", format!("all {total} environment(s) synced"))
    } else {
        let reason = summary_reason(&status.environments);
        (reason, failing.join("; "))
    };
    conditions::set(
        &mut status.conditions,
        "Ready",
        failing.is_empty(),
        reason,
        message.clone(),
        generation,
    );
    conditions::set(
        &mut status.conditions,
        "Synced",
        failing.is_empty(),
        reason,
        message,
        generation,
    );
    for kind in ["TargetNotAllowed", "Conflict"] {
        let hits: Vec<&str> = status
            .environments
            .iter()
            .filter(|e| conditions::is_true(&e.conditions, kind))
            .map(|e| e.name.as_str())
            .collect();
        if hits.is_empty() {
            conditions::clear(&mut status.conditions, kind);
        } else {
            conditions::set(
                &mut status.conditions,
                kind,
                true,
                kind,
                format!("environments: {}", hits.join(", ")),
                generation,
            );
        }
    }
    if tc.status.as_ref() != Some(&status) {
        patch_status(tc, &status, ctx).await?;
    }
    ctx.metrics.observe_status(tc, &status);
    if outcomes.iter().any(|(_, o)| o.retry_soon) {
        return Ok(Action::requeue(ctx.retry));
    }
    Ok(Action::requeue(ctx.resync))
}

fn summary_reason(envs: &[EnvironmentStatus]) -> &'static str {
    for e in envs {
        for c in &e.conditions {
            if c.type_ == "Synced" && c.status == "False" {
                return match c.reason.as_str() {
                    "TargetNotAllowed" => "TargetNotAllowed",
                    "Conflict" => "Conflict",
                    "SourceNotFound" => "SourceNotFound",
                    "SourceInvalid" => "SourceInvalid",
                    "XApiError" => "XApiError",
                    _ => "NotSynced",
                };
            }
        }
    }
    "NotSynced"
}

async fn patch_status(
    tc: &TwitterCredential,
    status: &TwitterCredentialStatus,
    ctx: &Context,
) -> Result<()> {
    let api: Api<TwitterCredential> =
        Api::namespaced(ctx.client.clone(), &tc.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "keyguard.dev/v1alpha1",
        "kind": "TwitterCredential",
        "status": status,
    });
    api.patch_status(
        &tc.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn event(
    ctx: &Context,
    tc: &TwitterCredential,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &tc.object_ref(&())).await {
        warn!(error = %e, "could not publish an Event");
    }
}

/// The Conflict message for an object of that name that is not ours.
fn not_ours(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind} {namespace}/{name} exists and is not managed by this TwitterCredential; it was left untouched")
}

fn owned_by(meta: &ObjectMeta, tc: &TwitterCredential) -> bool {
    let uid = tc.uid().unwrap_or_default();
    meta.labels.as_ref().and_then(|l| l.get(labels::OWNER_UID)) == Some(&uid)
}

fn managed_meta(
    tc: &TwitterCredential,
    env: &Environment,
    name: &str,
    namespace: &str,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(BTreeMap::from([
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (labels::OWNER_UID.into(), tc.uid().unwrap_or_default()),
            (labels::ENVIRONMENT.into(), env.name.clone()),
        ])),
        annotations: Some(BTreeMap::from([(
            labels::OWNER.into(),
            format!("{}/{}", tc.namespace().unwrap_or_default(), tc.name_any()),
        )])),
        ..Default::default()
    }
}

/// A user-visible problem with one environment: recorded as conditions
/// and an Event, never as a reconcile error.
fn refuse(status: &mut EnvironmentStatus, reason: &str, message: String, generation: Option<i64>) {
    conditions::set(
        &mut status.conditions,
        "Synced",
        false,
        reason,
        message.clone(),
        generation,
    );
    for kind in ["TargetNotAllowed", "Conflict"] {
        if kind == reason {
            conditions::set(
                &mut status.conditions,
                kind,
                true,
                reason,
                message.clone(),
                generation,
            );
        } else {
            conditions::clear(&mut status.conditions, kind);
        }
    }
}

/// Refuses an environment and sends a Warning Event, once when the
/// refusal starts rather than on every reconcile.
async fn refuse_and_warn(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &str,
    status: &mut EnvironmentStatus,
    reason: &str,
    message: String,
    generation: Option<i64>,
) {
    let ongoing = status.conditions.iter().any(|c| {
        c.type_ == "Synced" && c.status == "False" && c.reason == reason && c.message == message
    });
    if !ongoing {
        event(
            ctx,
            tc,
            EventType::Warning,
            reason,
            format!("{env}: {message}"),
        )
        .await;
    }
    refuse(status, reason, message, generation);
}

async fn sync_environment(
    tc: &TwitterCredential,
    env: &Environment,
    mut status: EnvironmentStatus,
    ctx: &Context,
) -> Result<EnvOutcome> {
    let ns = tc.namespace().unwrap_or_default();
    let generation = tc.metadata.generation;
    let target_ns = env.target.namespace.clone().unwrap_or_else(|| ns.clone());
    let target_name = env.target.secret_name.clone();
    status.target_secret = Some(format!("{target_ns}/{target_name}"));
    let unchanged = |status| {
        Ok(EnvOutcome {
            status,
            changed: false,
            retry_soon: false,
        })
    };

    // A namespace other than our own must opt in.
    if target_ns != ns {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let allowed = match namespaces.get_opt(&target_ns).await? {
            None => Some(format!("target namespace {target_ns} does not exist")),
            Some(n) if n.labels().get(&labels::allow_from(&ns)).map(String::as_str) == Some("true") => None,
            Some(_) => Some(format!(
                "namespace {target_ns} does not accept credentials from {ns}: label it `{}=true` to allow",
                labels::allow_from(&ns)
            )),
        };
        if let Some(message) = allowed {
            refuse_and_warn(
                ctx,
                tc,
                &env.name,
                &mut status,
                "TargetNotAllowed",
                message,
                generation,
            )
            .await;
            return unchanged(status);
        }
    }

    // The source, always from our own namespace.
    let source_name = &env.source.secret_ref.name;
    let sources: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(source) = sources.get_opt(source_name).await? else {
        let message = format!("source Secret {ns}/{source_name} not found");
        refuse(&mut status, "SourceNotFound", message, generation);
        return unchanged(status);
    };
    mark_source(&sources, &source, tc).await?;
    let source_data: Data = source
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    if let Err(e) = projection::check_source(
        &format!("{ns}/{source_name}"),
        &source_data,
        &env.target.keys,
    ) {
        refuse(&mut status, "SourceInvalid", e.to_string(), generation);
        return unchanged(status);
    }
    let source_fp = projection::data_fingerprint(&source_data).to_string();

    // The target must be ours, or not exist.
    let targets: Api<Secret> = Api::namespaced(ctx.client.clone(), &target_ns);
    let existing = targets.get_opt(&target_name).await?;
    if let Some(s) = &existing {
        if !owned_by(&s.metadata, tc) {
            let message = not_ours("Secret", &target_ns, &target_name);
            refuse_and_warn(
                ctx,
                tc,
                &env.name,
                &mut status,
                "Conflict",
                message,
                generation,
            )
            .await;
            return unchanged(status);
        }
    }

    // Derived credentials.
    let mut derived = Data::new();
    if env.target.keys.contains(&CredentialKey::BearerToken) {
        let reusable = existing.as_ref().and_then(|s| {
            let same_source = s.annotations().get(labels::SOURCE_FINGERPRINT) == Some(&source_fp);
            let token = s.data.as_ref()?.get(CredentialKey::BearerToken.as_str())?;
            same_source.then(|| token.0.clone())
        });
        let token = match reusable {
            Some(t) => t,
            None => {
                let key = SecretValue::new(source_data[CredentialKey::ApiKey.as_str()].clone());
                let secret =
                    SecretValue::new(source_data[CredentialKey::ApiKeySecret.as_str()].clone());
                match ctx.xapi.mint_bearer(&key, &secret).await {
                    Ok(t) => t.expose().to_vec(),
                    Err(e) => {
                        let message = format!("minting the bearer token failed: {e}");
                        refuse_and_warn(
                            ctx,
                            tc,
                            &env.name,
                            &mut status,
                            "XApiError",
                            message,
                            generation,
                        )
                        .await;
                        return Ok(EnvOutcome {
                            status,
                            changed: false,
                            retry_soon: e.is_transient(),
                        });
                    }
                }
            }
        };
        derived.insert(CredentialKey::BearerToken.as_str().into(), token);
    }
    if env.target.keys.contains(&CredentialKey::UserAccessToken) {
        refuse(
            &mut status,
            "NotImplemented",
            "userAccessToken is minted by the rotation controller, which this operator version does not have yet".into(),
            generation,
        );
        return unchanged(status);
    }

    let data = projection::project(&source_data, &derived, &env.target.keys);
    let content_fp = projection::data_fingerprint(&data).to_string();
    let mut meta = managed_meta(tc, env, &target_name, &target_ns);
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(labels::SOURCE_FINGERPRINT.into(), source_fp);
    annotations.insert(labels::CONTENT_FINGERPRINT.into(), content_fp.clone());
    let desired = Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Default::default()
    };
    let up_to_date = existing.as_ref().is_some_and(|s| {
        s.data == desired.data
            && s.annotations().get(labels::CONTENT_FINGERPRINT) == Some(&content_fp)
            && s.annotations().get(labels::SOURCE_FINGERPRINT)
                == desired.annotations().get(labels::SOURCE_FINGERPRINT)
            && s.labels().get(labels::ENVIRONMENT) == Some(&env.name)
    });
    if !up_to_date {
        targets
            .patch(
                &target_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await?;
    }
    if let Some(message) = sync_access(tc, env, &target_ns, &target_name, ctx).await? {
        refuse_and_warn(
            ctx,
            tc,
            &env.name,
            &mut status,
            "Conflict",
            message,
            generation,
        )
        .await;
        return unchanged(status);
    }

    let changed = status.fingerprint.as_deref() != Some(content_fp.as_str());
    if changed || !up_to_date {
        if changed {
            status.revision += 1;
        }
        status.fingerprint = Some(content_fp.clone());
        status.last_synced = Some(conditions::now());
        let verb = if existing.is_some() {
            "restored or updated"
        } else {
            "created"
        };
        info!(credential = %tc.name_any(), environment = %env.name, target = %format!("{target_ns}/{target_name}"), fingerprint = %content_fp, revision = status.revision, "projected Secret {verb}");
        event(
            ctx,
            tc,
            EventType::Normal,
            "Synced",
            format!(
                "{}: Secret {target_ns}/{target_name} {verb} with {} key(s), revision {}, fingerprint {content_fp}",
                env.name,
                env.target.keys.len(),
                status.revision
            ),
        )
        .await;
    }
    conditions::set(
        &mut status.conditions,
        "Synced",
        true,
        "Synced",
        format!(
            "Secret {target_ns}/{target_name} holds {} key(s)",
            env.target.keys.len()
        ),
        generation,
    );
    conditions::clear(&mut status.conditions, "TargetNotAllowed");
    conditions::clear(&mut status.conditions, "Conflict");
    // A brand-new Secret has no workload to restart yet.
    Ok(EnvOutcome {
        status,
        changed: changed && existing.is_some(),
        retry_soon: false,
    })
}

/// Labels the source Secret so the operator is told of its changes, and
/// names the readers so a change reaches each of them.
async fn mark_source(api: &Api<Secret>, source: &Secret, tc: &TwitterCredential) -> Result<()> {
    let name = tc.name_any();
    let readers: BTreeSet<String> = source
        .annotations()
        .get(labels::REFERENCED_BY)
        .map(|r| {
            r.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if source.labels().contains_key(labels::SOURCE) && readers.contains(&name) {
        return Ok(());
    }
    let mut readers = readers;
    readers.insert(name);
    let patch = json!({"metadata": {
        "labels": {labels::SOURCE: "true"},
        "annotations": {labels::REFERENCED_BY: readers.into_iter().collect::<Vec<_>>().join(",")}
    }});
    api.patch(
        &source.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

fn role_name(secret: &str) -> String {
    format!("keyguard-read-{secret}")
}

/// A Role allowing `get` on exactly the projected Secret, bound to the
/// declared ServiceAccounts. Returns a conflict message when a Role or
/// RoleBinding of that name exists and is not ours (it is left untouched).
async fn sync_access(
    tc: &TwitterCredential,
    env: &Environment,
    namespace: &str,
    secret: &str,
    ctx: &Context,
) -> Result<Option<String>> {
    let roles: Api<Role> = Api::namespaced(ctx.client.clone(), namespace);
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), namespace);
    let name = role_name(secret);
    let accounts: Vec<String> = env
        .access
        .as_ref()
        .map(|a| a.service_accounts.iter().map(|s| s.0.clone()).collect())
        .unwrap_or_default();
    let existing_role = roles.get_opt(&name).await?;
    let existing_binding = bindings.get_opt(&name).await?;
    for (kind, meta) in [
        ("Role", existing_role.as_ref().map(|r| &r.metadata)),
        (
            "RoleBinding",
            existing_binding.as_ref().map(|b| &b.metadata),
        ),
    ] {
        if meta.is_some_and(|m| !owned_by(m, tc)) {
            return Ok(Some(not_ours(kind, namespace, &name)));
        }
    }
    if accounts.is_empty() {
        if existing_binding.is_some() {
            bindings.delete(&name, &DeleteParams::default()).await?;
        }
        if existing_role.is_some() {
            roles.delete(&name, &DeleteParams::default()).await?;
        }
        return Ok(None);
    }
    let role = Role {
        metadata: managed_meta(tc, env, &name, namespace),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["secrets".into()]),
            resource_names: Some(vec![secret.into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: managed_meta(tc, env, &name, namespace),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(
            accounts
                .iter()
                .map(|a| Subject {
                    kind: "ServiceAccount".into(),
                    name: a.clone(),
                    namespace: Some(namespace.into()),
                    ..Default::default()
                })
                .collect(),
        ),
    };
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    if existing_role.as_ref().map(|r| &r.rules) != Some(&role.rules) {
        roles.patch(&name, &pp, &Patch::Apply(&role)).await?;
    }
    if existing_binding.as_ref().map(|b| &b.subjects) != Some(&binding.subjects) {
        bindings.patch(&name, &pp, &Patch::Apply(&binding)).await?;
    }
    Ok(None)
}

/// Objects this resource created for environments (or targets) it no
/// longer declares.
async fn remove_undeclared(tc: &TwitterCredential, ctx: &Context) -> Result<()> {
    let wanted: BTreeSet<(String, String)> = tc
        .spec
        .environments
        .iter()
        .map(|e| {
            let ns = e
                .target
                .namespace
                .clone()
                .unwrap_or_else(|| tc.namespace().unwrap_or_default());
            (ns, e.target.secret_name.clone())
        })
        .collect();
    let wanted_access: BTreeSet<(String, String)> = tc
        .spec
        .environments
        .iter()
        .filter(|e| {
            e.access
                .as_ref()
                .is_some_and(|a| !a.service_accounts.is_empty())
        })
        .map(|e| {
            let ns = e
                .target
                .namespace
                .clone()
                .unwrap_or_else(|| tc.namespace().unwrap_or_default());
            (ns, role_name(&e.target.secret_name))
        })
        .collect();
    delete_owned(
        tc,
        ctx,
        |ns, name, kind| match kind {
            "Secret" => !wanted.contains(&(ns.to_string(), name.to_string())),
            _ => !wanted_access.contains(&(ns.to_string(), name.to_string())),
        },
        true,
    )
    .await
}

/// Deletes objects labeled as owned by `tc` for which `unwanted` holds.
async fn delete_owned(
    tc: &TwitterCredential,
    ctx: &Context,
    unwanted: impl Fn(&str, &str, &str) -> bool,
    include_secrets: bool,
) -> Result<()> {
    let selector = format!("{}={}", labels::OWNER_UID, tc.uid().unwrap_or_default());
    let lp = ListParams::default().labels(&selector);
    let dp = DeleteParams::default();
    if include_secrets {
        let secrets: Api<Secret> = Api::all(ctx.client.clone());
        for s in secrets.list_metadata(&lp).await? {
            let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
            if unwanted(&ns, &name, "Secret") {
                Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                    .delete(&name, &dp)
                    .await?;
                info!(credential = %tc.name_any(), secret = %format!("{ns}/{name}"), "removed a projected Secret no longer declared");
            }
        }
    }
    let bindings: Api<RoleBinding> = Api::all(ctx.client.clone());
    for b in bindings.list_metadata(&lp).await? {
        let (ns, name) = (b.namespace().unwrap_or_default(), b.name_any());
        if unwanted(&ns, &name, "RoleBinding") {
            Api::<RoleBinding>::namespaced(ctx.client.clone(), &ns)
                .delete(&name, &dp)
                .await?;
        }
    }
    let roles: Api<Role> = Api::all(ctx.client.clone());
    for r in roles.list_metadata(&lp).await? {
        let (ns, name) = (r.namespace().unwrap_or_default(), r.name_any());
        if unwanted(&ns, &name, "Role") {
            Api::<Role>::namespaced(ctx.client.clone(), &ns)
                .delete(&name, &dp)
                .await?;
        }
    }
    Ok(())
}

/// Deletion: remove what this resource created (Secrets are kept with
/// `deletionPolicy: Retain`).
async fn cleanup(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    let retain = tc.spec.deletion_policy == Some(DeletionPolicy::Retain);
    delete_owned(tc, ctx, |_, _, _| true, !retain).await?;
    event(
        ctx,
        tc,
        EventType::Normal,
        "CleanedUp",
        if retain {
            "removed Roles and RoleBindings; projected Secrets retained (deletionPolicy: Retain)"
                .into()
        } else {
            "removed projected Secrets, Roles and RoleBindings".into()
        },
    )
    .await;
    ctx.metrics.forget(tc);
    Ok(Action::await_change())
}

/// Restarts each declared workload once per change, however many of its
/// environments changed: the pod template gets an annotation holding a
/// hash of every fingerprint it depends on.
async fn restart_workloads(
    tc: &TwitterCredential,
    outcomes: &[(&Environment, EnvOutcome)],
    ctx: &Context,
) {
    let mut workloads: BTreeMap<(String, WorkloadKind, String), (bool, Vec<String>)> =
        BTreeMap::new();
    for (env, outcome) in outcomes {
        let ns = env
            .target
            .namespace
            .clone()
            .unwrap_or_else(|| tc.namespace().unwrap_or_default());
        for w in &env.restart_targets {
            let entry = workloads
                .entry((ns.clone(), w.kind, w.name.clone()))
                .or_insert((false, Vec::new()));
            entry.0 |= outcome.changed;
            entry
                .1
                .push(outcome.status.fingerprint.clone().unwrap_or_default());
        }
    }
    for ((ns, kind, name), (changed, mut prints)) in workloads {
        if !changed {
            continue;
        }
        prints.sort();
        let hash = keyguard_credentials::fingerprint(prints.join(",").as_bytes()).to_string();
        let hash = hash.trim_start_matches("sha256:").to_string();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {labels::RESTARTED_FOR: hash}}}}});
        let pp = PatchParams::default();
        let result = match kind {
            WorkloadKind::Deployment => Api::<Deployment>::namespaced(ctx.client.clone(), &ns)
                .patch(&name, &pp, &Patch::Merge(&patch))
                .await
                .map(|_| ()),
            WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns)
                .patch(&name, &pp, &Patch::Merge(&patch))
                .await
                .map(|_| ()),
            WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(ctx.client.clone(), &ns)
                .patch(&name, &pp, &Patch::Merge(&patch))
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                event(
                    ctx,
                    tc,
                    EventType::Normal,
                    "Restarted",
                    format!("{kind:?} {ns}/{name} restarted for new credentials"),
                )
                .await;
            }
            Err(e) => {
                event(
                    ctx,
                    tc,
                    EventType::Warning,
                    "RestartFailed",
                    format!("{kind:?} {ns}/{name}: {e}"),
                )
                .await;
            }
        }
    }
}
