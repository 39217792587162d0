//! Each environment's stage pipeline: the operator's scope, the resource's
//! consent (`consent.rs`), rotation (every X API write), sync, then the
//! stages that work from what sync projected. Every environment is synced
//! before any stage after sync runs (the reconcile restarts workloads in
//! between), so one environment's X calls there do not hold up the next
//! one's new credentials.
//! Each stage adds to one outcome and says when it wants looking at again.

use k8s_openapi::jiff::Timestamp;
use tracing::Instrument;

use crate::conditions::{self, ConditionType, Reason};
use crate::context::Context;
use crate::events::Kind;
use crate::outcome::EnvOutcome;
use crate::reads::{AlreadyRead, SourceReads};
use crate::refusal::{Refusal, Teardown};
use crate::resource::{Environment, EnvironmentStatus, TwitterCredential};
use crate::rotation::due::{BearerBlocked, RotationInfo};
use crate::target::Target;
use crate::wake::{Wake, WakeUp};
use crate::{rotation, sync, verification};

/// What runs after sync, in this order, on what sync projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `RotationDue` for what only a person can replace.
    Reminders,
    /// Read-only X API calls, and `OverPrivileged`.
    Verification,
    /// A replaced OAuth 1.0a access token's invalidation after its grace.
    Retirement,
}

const AFTER_SYNC: [Stage; 3] = [Stage::Reminders, Stage::Verification, Stage::Retirement];

/// Every environment after rotation and sync, before the stages after
/// sync: what rotation found about each is kept for them.
pub struct Synced<'a> {
    pub outcomes: Vec<(&'a Environment, EnvOutcome)>,
    /// `None` where a refusal ended the environment before sync: no stage
    /// runs after it.
    rotations: Vec<Option<RotationInfo>>,
}

/// Scope, consent, rotation and sync of every environment, in spec order.
/// All of them come before any stage after sync, so one environment's X
/// calls there do not hold up the next one's new credentials.
pub async fn rotate_and_sync_all<'a>(ctx: &Context, tc: &'a TwitterCredential) -> Synced<'a> {
    let mut sources = SourceReads::default();
    let mut synced = Synced {
        outcomes: Vec::new(),
        rotations: Vec::new(),
    };
    for (env, duplicate_of) in tc
        .spec
        .environments
        .iter()
        .zip(super::status::duplicates(tc))
    {
        let previous = super::status::previous(tc, &env.name);
        let step = rotate_and_sync(ctx, tc, env, previous, duplicate_of, &mut sources);
        let (outcome, rotation) = step.instrument(span_of(env)).await;
        synced.outcomes.push((env, outcome));
        synced.rotations.push(rotation);
    }
    synced
}

/// The stages after sync, for every environment that synced.
pub async fn after_sync_all<'a>(
    ctx: &Context,
    tc: &TwitterCredential,
    synced: Synced<'a>,
) -> Vec<(&'a Environment, EnvOutcome)> {
    let mut outcomes = synced.outcomes;
    for ((env, outcome), rotation) in outcomes.iter_mut().zip(synced.rotations) {
        if let Some(info) = rotation {
            let stages = after_sync(ctx, tc, env, outcome, info);
            stages.instrument(span_of(env)).await;
        }
    }
    outcomes
}

/// Every log line of an environment's stages carries its name.
fn span_of(env: &Environment) -> tracing::Span {
    tracing::info_span!("environment", environment = %env.name)
}

/// Scope, consent, rotation and sync; every refusal ends up in the outcome.
async fn rotate_and_sync(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    previous: EnvironmentStatus,
    duplicate_of: Option<String>,
    sources: &mut SourceReads,
) -> (EnvOutcome, Option<RotationInfo>) {
    let target = Target::of(tc, env);
    if let Some(why) = ctx.scope.refusal(&target.namespace) {
        let message = format!("target {}: {why}", target.secret_ref());
        let refusal = Refusal::new(Reason::TargetNotAllowed, message, Teardown::Keep);
        return refused(ctx, tc, env, previous, &target, &refusal).await;
    }
    if let Some(refusal) = crate::consent::check(ctx, tc, env).await {
        return refused(ctx, tc, env, previous, &target, &refusal).await;
    }
    let mut already = AlreadyRead::default();
    let info = match rotation::rotate(ctx, tc, env, &previous, sources, &mut already).await {
        Ok(info) => info,
        Err(refusal) => return refused(ctx, tc, env, previous, &target, &refusal).await,
    };
    let outcome = sync::environment(ctx, tc, env, previous, duplicate_of.as_deref(), already).await;
    (outcome, Some(info))
}

/// Status from what rotation found, then the stages after sync.
async fn after_sync(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    outcome: &mut EnvOutcome,
    info: RotationInfo,
) {
    outcome.status.last_rotation = info.last_rotation.map(conditions::whole_seconds);
    outcome.status.next_rotation = info.next_rotation.map(conditions::whole_seconds);
    outcome.status.granted_scopes = info.granted_scopes.unwrap_or_default();
    outcome.wake.add_opt(info.next_rotation.map(Wake::At));
    rotation_blocked(ctx, tc, env, &mut outcome.status, info.bearer_blocked).await;
    let now = Timestamp::now();
    for stage in AFTER_SYNC {
        let wake = run_stage(stage, ctx, tc, env, outcome, now).await;
        outcome.wake.merge(wake);
    }
}

/// A refusal before sync: its Warning when it starts, and the status.
async fn refused(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    previous: EnvironmentStatus,
    target: &Target,
    refusal: &Refusal,
) -> (EnvOutcome, Option<RotationInfo>) {
    sync::record::warn_if_new(ctx, tc, env, &previous, refusal).await;
    let outcome = sync::record::refused(previous, target, refusal, tc.metadata.generation);
    (outcome, None)
}

/// `RotationBlocked` while a due bearer token rotation cannot start, with
/// a Warning Event when it starts; cleared once it can.
async fn rotation_blocked(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    status: &mut EnvironmentStatus,
    blocked: Option<BearerBlocked>,
) {
    let Some(blocked) = blocked else {
        conditions::clear(&mut status.conditions, ConditionType::RotationBlocked);
        return;
    };
    let (reason, message) = blocked_message(tc, env, blocked);
    let warn = conditions::set_warning(
        &mut status.conditions,
        ConditionType::RotationBlocked,
        true,
        reason,
        message.clone(),
        tc.metadata.generation,
        true,
        conditions::News::StatusChanged,
    );
    if warn {
        let note = format!("{}: {message}", env.name);
        ctx.events
            .publish(
                &kube::Resource::object_ref(tc, &()),
                Kind::Warning,
                "RotationBlocked",
                "Rotate",
                &note,
                None,
            )
            .await;
    }
}

/// Pure: the reason and message of `RotationBlocked`.
fn blocked_message(
    tc: &TwitterCredential,
    env: &Environment,
    blocked: BearerBlocked,
) -> (Reason, String) {
    let (reason, why) = match blocked {
        BearerBlocked::OwnerTokenMissing => {
            let source = format!(
                "{}/{}",
                tc.metadata.namespace.as_deref().unwrap_or_default(),
                env.source.secret_ref.name
            );
            let why = format!(
                "{} (source Secret {source})",
                rotation::bearer::OWNER_TOKEN_NEEDED
            );
            (Reason::OwnerTokenMissing, why)
        }
        BearerBlocked::NotAppOwner { owner } => (
            Reason::NotAppOwner,
            format!("{owner} owns this app's bearer token and rotates it; this environment takes each new token without invalidating anything (X keeps one bearer token per app). Rotate it there, or give this environment its own app"),
        ),
    };
    let message = format!("a bearer token rotation is due and was not started: {why}");
    (reason, message)
}

async fn run_stage(
    stage: Stage,
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    outcome: &mut EnvOutcome,
    now: Timestamp,
) -> WakeUp {
    let mut wake = WakeUp::default();
    match stage {
        Stage::Reminders => {
            let at = rotation::reminders::remind(ctx, tc, env, &mut outcome.status, now).await;
            wake.add_opt(at.map(Wake::At));
        }
        Stage::Verification => {
            let (retry, at) = verification::verify(ctx, tc, env, outcome, now).await;
            wake.add_opt(retry.then_some(Wake::Soon));
            wake.add_opt(at.map(Wake::At));
        }
        Stage::Retirement => wake = retire(ctx, tc, env, outcome).await,
    }
    wake
}

/// After a successful sync: a replaced OAuth 1.0a access token's
/// retirement; a failure is a Warning Event and an early retry.
async fn retire(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    outcome: &EnvOutcome,
) -> WakeUp {
    let synced = conditions::is_true(&outcome.status.conditions, ConditionType::Synced);
    let Some(source) = outcome.projected_from.as_ref().filter(|_| synced) else {
        return WakeUp::default();
    };
    match rotation::retirement::retire_when_due(ctx, tc, env, source, Timestamp::now()).await {
        Ok(at) => WakeUp::of_at(at),
        Err(refusal) => {
            ctx.events
                .publish(
                    &kube::Resource::object_ref(tc, &()),
                    Kind::Warning,
                    "AccessTokenRetirementFailed",
                    "Retire",
                    &format!("{}: {}", env.name, refusal.message),
                    None,
                )
                .await;
            WakeUp::of(Wake::Soon)
        }
    }
}
