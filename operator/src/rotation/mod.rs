//! The rotation controller: it owns every X API write. Per environment and
//! credential kind, a small state machine whose step is recorded in the
//! state record (`state_record.rs`) before each external call, so a crash at any
//! step resumes and converges without losing a working credential.
//!
//! - `bearer.rs`: the app-only bearer token (mint, and rotate on schedule
//!   or on request: invalidate → mint → verify → store);
//! - `app_owner.rs`: which one of the environments deriving an app's
//!   bearer token may invalidate it; the others follow;
//! - `portal.rs`: a person's new portal values are checked before they
//!   replace a working projection;
//! - `reminders.rs`: `RotationDue` for what only a person can replace;
//! - `retirement.rs`: a replaced OAuth 1.0a access token is invalidated
//!   `gracePeriod` after its successor was projected;
//! - `user.rs`: the OAuth 2.0 user access token (refresh before expiry,
//!   single-use refresh tokens persisted first);
//! - `due.rs`: when a rotation is due (its schedule, or a person's request).
//!
//! Intervals and cron live in `schedule.rs`, the state record sync projects
//! derived values from in `state_record.rs`.
//!
//! A person asks for a rotation now with the annotation
//! `keyguard.dev/rotate-now: <anything new>`; each value is handled once.

pub mod app_owner;
pub mod bearer;
pub mod due;
pub mod portal;
pub mod reminders;
pub mod retirement;
pub mod user;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use keyguard_credentials::CredentialKey;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::objects::secret_data;
use crate::reads::{AlreadyRead, SourceReads};
use crate::refusal::Refusal;
use crate::resource::{Environment, TwitterCredential};
use crate::state_record;
use due::RotationInfo;

/// Mints and rotates what the environment derives.
pub async fn rotate(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    previous: &crate::resource::EnvironmentStatus,
    sources: &mut SourceReads,
    already: &mut AlreadyRead,
) -> Result<RotationInfo, Refusal> {
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let read = |e: kube::Error| Refusal::read_failed(&e);
    let source = sources
        .get(&api, &env.source.secret_ref.name)
        .await
        .map_err(read)?;
    already.source = Some(source.clone());
    let Some(source) = source else {
        return Ok(RotationInfo::default());
    };
    let source = secret_data(&source);
    portal::vet(ctx, tc, env, &source, previous).await?;
    if !state_record::needs_state(env) {
        return Ok(RotationInfo::default());
    }
    let mut state = api
        .get_opt(&state_record::state_name(tc, env))
        .await
        .map_err(read)?;
    let mut info = RotationInfo::default();
    if env.target.keys.contains(&CredentialKey::BearerToken) {
        let bearer;
        let rejected = previous.bearer_rejected.as_deref();
        (bearer, state) =
            bearer::mint_or_rotate(ctx, tc, env, &source, state, rejected, Timestamp::now())
                .await?;
        info = info.merge(bearer);
    }
    if env.target.keys.contains(&CredentialKey::UserAccessToken) {
        info = info.merge(user::refresh(ctx, tc, env, &source, state, Timestamp::now()).await?);
        // A refresh rewrites the record: sync reads it afresh.
        return Ok(info);
    }
    already.state = Some(state);
    Ok(info)
}
