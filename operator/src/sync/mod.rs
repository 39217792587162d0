//! Syncing one environment of a TwitterCredential, in five steps that each
//! do one kind of thing:
//!
//! - [`observe`]: every read, into one [`observe::Observed`];
//! - [`check`]: pure gates that refuse with a typed [`Refusal`];
//! - [`plan`]: pure: the objects the environment should have, and the
//!   create / replace / delete steps that get there;
//! - [`apply`]: the writes: create-only for new objects, a resourceVersion
//!   precondition on every replace and delete, rollback on a lost race;
//! - [`record`]: pure: revision, fingerprints and conditions.
//!
//! Sync never calls the X API: derived credentials come from the state
//! record (`state_record.rs`) the rotation stage keeps.

pub mod apply;
pub mod check;
pub mod observe;
pub mod plan;
pub mod record;

use crate::outcome::EnvOutcome;
use crate::reads::AlreadyRead;
use crate::refusal::Refusal;
use crate::resource::{Environment, EnvironmentStatus, TwitterCredential};
use crate::target::Target;

/// Syncs one environment; every failure ends up in the returned status.
/// A refusal seen on cached reads is looked at again with fresh reads
/// before it is reported or anything is torn down: a cache one event
/// behind (our own create not seen yet) must never read as a conflict.
pub async fn environment(
    ctx: &crate::context::Context,
    tc: &TwitterCredential,
    env: &Environment,
    previous: EnvironmentStatus,
    duplicate_of: Option<&str>,
    read: AlreadyRead,
) -> EnvOutcome {
    let target = Target::of(tc, env);
    let generation = tc.metadata.generation;
    let mut wrote_before = false;
    let mut reads = observe::Reads::Cached;
    loop {
        let observed = match observe::observe(ctx, tc, env, &target, read.clone(), reads).await {
            Ok(o) => o,
            Err(e) => {
                let refusal = Refusal::read_failed(&e);
                return record::refused(previous, &target, &refusal, generation);
            }
        };
        let owner = crate::ownership::Owner::of(tc);
        let pieces = check::Pieces::of(&ctx.claims, &observed, &owner);
        let refusal = match sync_observed(ctx, tc, env, &target, duplicate_of, &observed, &pieces)
            .await
        {
            Ok((plan, source, wrote)) => {
                let wrote = wrote || wrote_before;
                let outcome = record::synced(previous, &target, &plan, &source, wrote, generation);
                if wrote {
                    let existed = observed.secret.is_some();
                    record::announce(ctx, tc, env, &target, &outcome.status, existed).await;
                }
                return outcome;
            }
            Err(refusal) => refusal,
        };
        wrote_before |= refusal.wrote;
        if observed.from_cache {
            // Fresh reads never come from a cache: this repeats once.
            reads = observe::Reads::Fresh;
            continue;
        }
        let teardown = plan::teardown(&observed, &pieces, refusal.teardown);
        let refusal = match apply::apply(ctx, &target, &teardown, true).await {
            Ok(_) => refusal,
            Err(failed) => failed,
        };
        record::warn_if_new(ctx, tc, env, &previous, &refusal).await;
        return record::refused(previous, &target, &refusal, generation);
    }
}

/// Checks, plans and applies on what was observed: the plan, the source
/// values it projected and whether anything was written, or why not.
async fn sync_observed(
    ctx: &crate::context::Context,
    tc: &TwitterCredential,
    env: &Environment,
    target: &Target,
    duplicate_of: Option<&str>,
    observed: &observe::Observed,
    pieces: &check::Pieces,
) -> Result<(plan::Plan, crate::projection::Data, bool), Refusal> {
    let inputs = check::check(tc, env, target, duplicate_of, observed, pieces)?;
    let plan = plan::plan(&ctx.claims, tc, env, target, &inputs, observed, pieces);
    let wrote = apply::apply(ctx, target, &plan.steps, false).await?;
    Ok((plan, inputs.source, wrote))
}
