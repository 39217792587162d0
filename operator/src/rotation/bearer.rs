//! The app-only bearer token: minted once, rotated on schedule or on
//! request. X returns the same token until it is invalidated, so a
//! rotation is invalidate → mint → verify → store, and consumers of the old
//! token fail from the invalidation until they restart on the new one: the
//! new token is minted at once and projected and rolled out in the same
//! reconcile to keep that window short.
//!
//! Each step is recorded in the state record before its X API call, so a
//! crash anywhere resumes where it stopped: a recorded invalidation whose
//! token is already refused is not repeated, and a recorded mint gets the
//! same token back from X.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use keyguard_credentials::{CredentialKey, SecretValue};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::app_owner::{self, AppRole};
use super::due::{BearerBlocked, RotationInfo};
use crate::conditions::Reason;
use crate::context::Context;
use crate::context::CrashPoint;
use crate::events::Kind;
use crate::labels;
use crate::objects::secret_data;
use crate::projection::Data;
use crate::refusal::Refusal;
use crate::resource::{Environment, TwitterCredential};
use crate::state_record::{minted_from, state_name};
use crate::xapi::{oauth1_values, OAuth1Values, XApi, XApiError};

/// Why a bearer token cannot be invalidated, and what a person does.
pub const OWNER_TOKEN_NEEDED: &str = "X invalidates a bearer token only with OAuth 1.0a signed by the app owner's access token: add `accessToken` and `accessTokenSecret` (the owner's, from the developer portal) to the source Secret, or remove `rotation.bearerToken`";

/// The step a rotation is at, as recorded in the state record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Idle,
    /// About to invalidate (or invalidating) the current token.
    Invalidating,
    /// The old token is invalid; about to mint (or minting) the new one.
    Minting,
}

impl Step {
    fn read(state: Option<&Secret>) -> Step {
        match state
            .and_then(|s| s.annotations().get(labels::ROTATION_STEP))
            .map(String::as_str)
        {
            Some("invalidating") => Step::Invalidating,
            Some("minting") => Step::Minting,
            _ => Step::Idle,
        }
    }

    fn label(self) -> Option<&'static str> {
        match self {
            Step::Idle => None,
            Step::Invalidating => Some("invalidating"),
            Step::Minting => Some("minting"),
        }
    }
}

/// What the rotation controller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub step: Step,
    /// The record holds a token minted from the source's current keys.
    pub minted: bool,
    /// The schedule says so, or a person asked (rotate-now).
    pub due: bool,
    /// The source holds the app owner's access token and secret, which X
    /// requires to invalidate a bearer token.
    pub can_invalidate: bool,
    /// Whether this environment owns the app's bearer token.
    pub standing: Standing,
}

/// Where an environment stands among those deriving one app's bearer
/// token (`app_owner.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It alone may invalidate the token.
    Owner,
    /// Another environment rotates it; `owner_rotated`: it did since this
    /// environment's last mint.
    Follower { owner_rotated: bool },
    /// The caches cannot tell yet.
    Unknown,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Nothing,
    /// No token for these keys yet: mint one (nothing to invalidate).
    Mint,
    /// Start a rotation from the invalidation.
    Rotate,
    /// A rotation was interrupted: finish it from the recorded step.
    Resume(Step),
    /// A rotation is due but X would refuse the invalidation (no owner
    /// token in the source): nothing is sent to X; a person is told.
    Blocked,
    /// Mint again without invalidating: the app's owner rotated the token
    /// (X answers with the current one), or a follower's interrupted
    /// rotation ends without one.
    Follow,
    /// A rotation is due but another environment owns the app's token:
    /// nothing is sent to X; a person is told who rotates it.
    NotOwner,
    /// Whether this environment may invalidate is not known yet: nothing
    /// is sent to X; tried again soon.
    Wait,
}

/// Pure: the next transition of the bearer token's state machine.
pub fn next(o: Observation) -> Transition {
    let interrupted = o.step != Step::Idle;
    let follower = matches!(o.standing, Standing::Follower { .. });
    let owner_rotated = o.standing
        == Standing::Follower {
            owner_rotated: true,
        };
    if !o.minted && !interrupted {
        Transition::Mint
    } else if follower && (interrupted || owner_rotated) {
        Transition::Follow
    } else if !interrupted && !o.due {
        Transition::Nothing
    } else if o.standing == Standing::Unknown {
        Transition::Wait
    } else if interrupted {
        Transition::Resume(o.step)
    } else if follower {
        Transition::NotOwner
    } else if o.can_invalidate {
        Transition::Rotate
    } else {
        Transition::Blocked
    }
}

/// The keys a token is minted with, and the app owner's OAuth 1.0a values
/// that invalidate one, when the source holds them.
struct Keys {
    key: SecretValue,
    secret: SecretValue,
    from: String,
    owner: Option<OAuth1Values>,
}

/// Mints or rotates the environment's bearer token as its state says;
/// returns the state record as it now is.
pub async fn mint_or_rotate(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    source: &Data,
    state: Option<Secret>,
    rejected: Option<&str>,
    now: Timestamp,
) -> Result<(RotationInfo, Option<Secret>), Refusal> {
    let Some(keys) = keys(source) else {
        // A missing or broken source is sync's to report.
        return Ok((RotationInfo::default(), state));
    };
    crate::state_record::ensure_ours(ctx, tc, state.as_ref())?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &tc.namespace().unwrap_or_default());
    let state = sign_if_unsigned(ctx, &api, state, &keys).await?;
    let schedule = super::due::bearer_schedule(env);
    let requested = super::due::rotate_now_request(tc, state.as_ref());
    let last = state.as_ref().and_then(last_rotation);
    let (standing, app_owner) = app_standing(ctx, env, &keys, state.as_ref());
    let observation = Observation {
        step: Step::read(state.as_ref()),
        minted: is_minted(state.as_ref(), &keys, rejected),
        due: requested.is_some() || super::due::is_due(schedule, last, now),
        can_invalidate: keys.owner.is_some(),
        standing,
    };
    let transition = next(observation);
    let state = act(ctx, tc, env, &keys, state, transition, requested).await?;
    let last = state.as_ref().and_then(last_rotation);
    let ns = tc.namespace().unwrap_or_default();
    let info = RotationInfo {
        last_rotation: last,
        next_rotation: schedule
            .and_then(|s| crate::schedule::next_after(s, last.unwrap_or(now)).ok()),
        bearer_blocked: match transition {
            Transition::Blocked => Some(BearerBlocked::OwnerTokenMissing),
            Transition::NotOwner => app_owner.map(|o| BearerBlocked::NotAppOwner {
                owner: o.described_to(&ns),
            }),
            _ => None,
        },
        granted_scopes: None,
    };
    Ok((info, state))
}

/// This environment's standing among those deriving the app's bearer
/// token, and the owner when it is another environment. Without a state
/// record there is no token of its own to invalidate.
fn app_standing(
    ctx: &Context,
    env: &Environment,
    keys: &Keys,
    state: Option<&Secret>,
) -> (Standing, Option<app_owner::Deriver>) {
    let Some(state) = state else {
        return (Standing::Owner, None);
    };
    let rotates = super::due::bearer_schedule(env).is_some();
    let Some(this) = app_owner::Deriver::of(state, rotates) else {
        return (Standing::Unknown, None);
    };
    let others = ctx
        .caches
        .get()
        .and_then(|stores| app_owner::derivers(&stores, &ctx.claims, &keys.from));
    let Some(others) = others else {
        return (Standing::Unknown, None);
    };
    match app_owner::role(&this, &others) {
        AppRole::Owner => (Standing::Owner, None),
        AppRole::Follower { owner } => {
            let owner_rotated = app_owner::owner_rotated(&this, &owner);
            (Standing::Follower { owner_rotated }, Some(owner))
        }
    }
}

/// Pure: whether the state record holds a token minted from these keys
/// that X has not refused. A token X refused though this environment
/// never invalidated it (another resource of the app rotated it) counts
/// as not minted: minting again invalidates nothing, and X answers with
/// the app's current token.
fn is_minted(state: Option<&Secret>, keys: &Keys, rejected: Option<&str>) -> bool {
    let refused_by_x = |s: &Secret| {
        token_of(s).is_some_and(|t| Some(t.fingerprint().to_string().as_str()) == rejected)
    };
    state.is_some_and(|s| {
        s.annotations().get(labels::MINTED_FROM) == Some(&keys.from)
            && s.data
                .as_ref()
                .is_some_and(|d| d.contains_key(CredentialKey::BearerToken.as_str()))
            && !refused_by_x(s)
    })
}

/// Carries out a transition; the state record as it now is.
async fn act(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    keys: &Keys,
    state: Option<Secret>,
    transition: Transition,
    requested: Option<String>,
) -> Result<Option<Secret>, Refusal> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &tc.namespace().unwrap_or_default());
    Ok(match (transition, state) {
        (Transition::Nothing | Transition::Blocked | Transition::NotOwner, state) => state,
        (Transition::Wait, _) => return Err(waiting_for_caches()),
        (Transition::Mint, state) => Some(mint(ctx, tc, env, &api, keys, state, None).await?),
        (Transition::Follow, state) => {
            Some(mint(ctx, tc, env, &api, keys, state, requested).await?)
        }
        (Transition::Rotate, Some(s)) => {
            Some(rotate(ctx, tc, env, &api, keys, s, Step::Idle, requested).await?)
        }
        (Transition::Resume(step), Some(s)) => {
            Some(rotate(ctx, tc, env, &api, keys, s, step, requested).await?)
        }
        (Transition::Rotate | Transition::Resume(_), None) => None,
    })
}

/// A due or interrupted rotation waits until the caches tell whether this
/// environment owns the app's token: guessing could invalidate another
/// environment's token.
fn waiting_for_caches() -> Refusal {
    Refusal::new(
        Reason::DerivedPending,
        "waiting for the operator's caches to tell which environment owns the app's bearer token before rotating it",
        crate::refusal::Teardown::Keep,
    )
    .soon()
}

fn keys(source: &Data) -> Option<Keys> {
    let get = |k: CredentialKey| source.get(k.as_str()).filter(|v| !v.is_empty()).cloned();
    Some(Keys {
        key: SecretValue::new(get(CredentialKey::ApiKey)?),
        secret: SecretValue::new(get(CredentialKey::ApiKeySecret)?),
        from: minted_from(source),
        owner: oauth1_values(source),
    })
}

/// When the bearer token was last minted or rotated (a user token's
/// refresh in the same record does not count), for its schedule.
fn last_rotation(state: &Secret) -> Option<Timestamp> {
    let a = state.annotations();
    a.get(labels::BEARER_ROTATED_AT)
        .or_else(|| a.get(labels::LAST_ROTATION))?
        .parse()
        .ok()
}

fn token_of(state: &Secret) -> Option<SecretValue> {
    secret_data(state)
        .remove(CredentialKey::BearerToken.as_str())
        .map(SecretValue::new)
}

fn x_api_refusal(doing: &str, e: XApiError) -> Refusal {
    Refusal::x_api(doing, &e)
}

/// Mints for these keys without invalidating anything: X returns the
/// app's current token. A person's pending request is marked handled when
/// the app's owner rotated the token (`requested`).
async fn mint(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    api: &Api<Secret>,
    keys: &Keys,
    existing: Option<Secret>,
    requested: Option<String>,
) -> Result<Secret, Refusal> {
    let token = ctx
        .xapi
        .mint_bearer(&keys.key, &keys.secret)
        .await
        .map_err(|e| x_api_refusal("minting the bearer token", e))?;
    let ns = tc.namespace().unwrap_or_default();
    let name = state_name(tc, env);
    let creating = existing.is_none();
    let base = existing.unwrap_or_else(|| crate::state_record::new_record(ctx, tc, env));
    let mut state = with_minted(base, &keys.from, &token, requested, Timestamp::now());
    app_owner::sign(&ctx.claims, &mut state);
    let written = match creating {
        true => api.create(&PostParams::default(), &state).await,
        false => api.replace(&name, &PostParams::default(), &state).await,
    };
    let written = written
        .map_err(|e| Refusal::write_failed(&format!("writing state Secret {ns}/{name}"), &e))?;
    ctx.own_writes.record(&written.metadata);
    tracing::info!(fingerprint = %token.fingerprint(), "minted a bearer token into the state record");
    Ok(written)
}

/// Pure: the state record holding a token just minted from keys `from`,
/// everything else it holds (a user token, its refresh token) kept. Its
/// `app-since` stays while the keys do (the record's age among the app's
/// environments), and starts now when they change; an interrupted
/// rotation's step is over; `requested` is marked handled.
fn with_minted(
    mut state: Secret,
    from: &str,
    token: &SecretValue,
    requested: Option<String>,
    now: Timestamp,
) -> Secret {
    let same_keys = state
        .annotations()
        .get(labels::MINTED_FROM)
        .map(String::as_str)
        == Some(from);
    let since = same_keys
        .then(|| app_since(&state))
        .flatten()
        .unwrap_or_else(|| now.to_string());
    let a = state.annotations_mut();
    a.insert(labels::MINTED_FROM.into(), from.to_string());
    a.insert(labels::APP_SINCE.into(), since);
    a.insert(labels::BEARER_ROTATED_AT.into(), now.to_string());
    a.insert(labels::LAST_ROTATION.into(), now.to_string());
    a.remove(labels::ROTATION_STEP);
    if let Some(r) = requested {
        a.insert(labels::ROTATE_NOW_HANDLED.into(), r);
    }
    state.data.get_or_insert_with(Default::default).insert(
        CredentialKey::BearerToken.as_str().to_string(),
        ByteString(token.expose().to_vec()),
    );
    state
}

/// When the record first minted from its current keys: its `app-since`,
/// or, for a record written before there was one, its creation.
fn app_since(state: &Secret) -> Option<String> {
    state
        .annotations()
        .get(labels::APP_SINCE)
        .cloned()
        .or_else(|| {
            state
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
}

/// A record minted from the current keys whose app claim does not hold is
/// signed again, trusting none of the parts it claims: one written before
/// app claims existed keeps its creation as its age; one whose parts were
/// edited (someone who may write it tried to make it the app's oldest)
/// starts its age now. Either way it then counts among the app's
/// environments (`app_owner.rs`).
async fn sign_if_unsigned(
    ctx: &Context,
    api: &Api<Secret>,
    state: Option<Secret>,
    keys: &Keys,
) -> Result<Option<Secret>, Refusal> {
    let Some(s) = state else { return Ok(None) };
    let current = s.annotations().get(labels::MINTED_FROM) == Some(&keys.from);
    if !current || app_owner::signed(&ctx.claims, &s) {
        return Ok(Some(s));
    }
    let now = Timestamp::now().to_string();
    let (since, rotated) = match s.annotations().contains_key(labels::APP_CLAIM) {
        true => {
            tracing::warn!(state = %s.name_any(), "a state record's app claim does not hold: its age starts now");
            (now.clone(), now)
        }
        false => {
            let created = s
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string());
            let rotated = s.annotations().get(labels::LAST_ROTATION).cloned();
            (
                created.unwrap_or_else(|| now.clone()),
                rotated.unwrap_or(now),
            )
        }
    };
    let claims = ctx.claims.clone();
    let signed = record(api, s, move |r| {
        let a = r.annotations_mut();
        a.insert(labels::APP_SINCE.into(), since.clone());
        a.insert(labels::BEARER_ROTATED_AT.into(), rotated.clone());
        app_owner::sign(&claims, r);
    })
    .await?;
    ctx.own_writes.record(&signed.metadata);
    Ok(Some(signed))
}

/// Invalidate → mint → verify → store, from `from` on, recording each step
/// before its X API call.
#[allow(clippy::too_many_arguments)]
async fn rotate(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    api: &Api<Secret>,
    keys: &Keys,
    mut state: Secret,
    from: Step,
    requested: Option<String>,
) -> Result<Secret, Refusal> {
    let old = token_of(&state);
    if from != Step::Minting {
        state = record(api, state, |a| set_step(a, Step::Invalidating)).await?;
        ctx.own_writes.record(&state.metadata);
        ctx.crash_point(CrashPoint::BeforeInvalidate).await;
        if let Some(old) = &old {
            invalidate(ctx.xapi.as_ref(), keys, old, from == Step::Invalidating).await?;
        }
        ctx.crash_point(CrashPoint::AfterInvalidate).await;
        state = record(api, state, |a| set_step(a, Step::Minting)).await?;
        ctx.own_writes.record(&state.metadata);
    }
    ctx.crash_point(CrashPoint::BeforeMint).await;
    let new = ctx
        .xapi
        .mint_bearer(&keys.key, &keys.secret)
        .await
        .map_err(|e| x_api_refusal("minting the new bearer token", e))?;
    ctx.crash_point(CrashPoint::AfterMint).await;
    if !minted_anew(old.as_ref(), &new) {
        return Err(still_the_old_token());
    }
    match ctx.xapi.verify_bearer(&new).await {
        // 453: X authenticated the new token; the app's access tier lacks
        // the endpoint. Stopping here would leave the old, invalidated
        // token projected.
        Ok(_) => {}
        Err(e) if e.is_tier_limited() => {}
        Err(e) => return Err(x_api_refusal("verifying the new bearer token", e)),
    }
    let state = store_rotated(api, &ctx.claims, state, &new, requested).await?;
    ctx.own_writes.record(&state.metadata);
    ctx.metrics.rotated(tc, &env.name, "bearerToken");
    announce_rotation(ctx, tc, env, &new).await;
    Ok(state)
}

/// Pure: whether X's answer to the mint is another token than the one the
/// rotation invalidated (X answers the current token until it is gone).
fn minted_anew(old: Option<&SecretValue>, new: &SecretValue) -> bool {
    old.is_none_or(|o| o.expose() != new.expose())
}

/// X minted the token it was asked to invalidate: it is not gone (a 401
/// for it was wrong, or the invalidation has not taken effect). Nothing is
/// stored or announced; the rotation stays at its mint and looks again soon.
fn still_the_old_token() -> Refusal {
    Refusal::new(
        Reason::XApiError,
        "X answered the new bearer token request with the token the rotation invalidated: it is still X's current token, so nothing was stored; the mint is tried again soon",
        crate::refusal::Teardown::Keep,
    )
    .soon()
}

/// Records the new token, ends the rotation and marks a request handled.
async fn store_rotated(
    api: &Api<Secret>,
    claims: &crate::ownership::ClaimKey,
    state: Secret,
    new: &SecretValue,
    requested: Option<String>,
) -> Result<Secret, Refusal> {
    let now = Timestamp::now().to_string();
    let new_bytes = new.expose().to_vec();
    record(api, state, |s| {
        let a = s.annotations_mut();
        a.remove(labels::ROTATION_STEP);
        a.insert(labels::LAST_ROTATION.into(), now.clone());
        a.insert(labels::BEARER_ROTATED_AT.into(), now.clone());
        if let Some(r) = &requested {
            a.insert(labels::ROTATE_NOW_HANDLED.into(), r.clone());
        }
        // Only the bearer token: a user token in the same record stays.
        s.data.get_or_insert_with(Default::default).insert(
            CredentialKey::BearerToken.as_str().to_string(),
            ByteString(new_bytes.clone()),
        );
        app_owner::sign(claims, s);
    })
    .await
}

async fn announce_rotation(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    new: &SecretValue,
) {
    let note = format!(
        "{}: bearer token rotated (now {}); consumers of the old token fail until they restart on the new one",
        env.name,
        new.fingerprint()
    );
    ctx.events
        .publish(
            &kube::Resource::object_ref(tc, &()),
            Kind::Normal,
            "BearerTokenRotated",
            "Rotate",
            &note,
            None,
        )
        .await;
}

/// Invalidates `old`, unless a resumed rotation finds X already refusing it
/// (the crash came after the invalidation): never twice.
async fn invalidate(
    x: &dyn XApi,
    keys: &Keys,
    old: &SecretValue,
    resuming: bool,
) -> Result<(), Refusal> {
    if resuming {
        // Only 401 says the token is gone; a 403 (code 453: the access tier
        // lacks the endpoint) authenticated it.
        match x.verify_bearer(old).await {
            Err(XApiError::Refused { status: 401, .. }) => return Ok(()),
            Err(e) if e.is_transient() => {
                return Err(x_api_refusal("checking the old bearer token", e))
            }
            _ => {}
        }
    }
    let Some(owner) = &keys.owner else {
        return Err(Refusal::new(
            Reason::OwnerTokenMissing,
            OWNER_TOKEN_NEEDED,
            crate::refusal::Teardown::Keep,
        ));
    };
    match x.invalidate_bearer(&owner.keys(), old).await {
        Ok(()) => Ok(()),
        Err(e) if resuming && e.is_not_invalidatable() => Ok(()),
        Err(e) => Err(x_api_refusal("invalidating the old bearer token", e)),
    }
}

fn set_step(s: &mut Secret, step: Step) {
    let a = s.metadata.annotations.get_or_insert_with(Default::default);
    match step.label() {
        Some(l) => a.insert(labels::ROTATION_STEP.into(), l.into()),
        None => a.remove(labels::ROTATION_STEP),
    };
}

/// Writes to the state record that lose a race are tried again this often.
const CONFLICT_TRIES: usize = 5;

/// Replaces the state record (resourceVersion as precondition). A conflict
/// means someone wrote the record in between (a label, an annotation, an
/// apiserver retry): the change is applied again to the latest record, but
/// only while that record is at the same step with the same token, so no
/// one else's progress is ever overwritten.
async fn record(
    api: &Api<Secret>,
    state: Secret,
    change: impl Fn(&mut Secret),
) -> Result<Secret, Refusal> {
    let name = state.name_any();
    let refusal = |e: &kube::Error| {
        Refusal::write_failed(&format!("recording the rotation in state Secret {name}"), e)
    };
    let mut current = state;
    for attempt in 1..=CONFLICT_TRIES {
        let mut next = current.clone();
        change(&mut next);
        let e = match api.replace(&name, &PostParams::default(), &next).await {
            Ok(written) => return Ok(written),
            Err(e) => e,
        };
        let conflict = matches!(&e, kube::Error::Api(s) if s.code == 409);
        if !conflict || attempt == CONFLICT_TRIES {
            return Err(refusal(&e));
        }
        match api.get_opt(&name).await.map_err(|e| refusal(&e))? {
            Some(latest) if same_rotation(&current, &latest) => current = latest,
            _ => return Err(refusal(&e)),
        }
    }
    unreachable!("the last try returns")
}

/// Pure: whether two versions of the state record are at the same point of
/// the same rotation (same owner, step, keys and token).
fn same_rotation(a: &Secret, b: &Secret) -> bool {
    let annotation = |s: &Secret, k: &str| s.annotations().get(k).cloned();
    let token = |s: &Secret| token_of(s).map(|t| t.expose().to_vec());
    a.metadata.uid == b.metadata.uid
        && a.labels().get(labels::OWNER_UID) == b.labels().get(labels::OWNER_UID)
        && Step::read(Some(a)) == Step::read(Some(b))
        && annotation(a, labels::MINTED_FROM) == annotation(b, labels::MINTED_FROM)
        && annotation(a, labels::ROTATE_NOW_HANDLED) == annotation(b, labels::ROTATE_NOW_HANDLED)
        && token(a) == token(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflicting_write_is_redone_only_at_the_same_point_of_the_same_rotation() {
        let record = |uid: &str, step: Option<&str>, token: &str, extra_label: bool| {
            let mut annotations = serde_json::json!({"keyguard.dev/minted-from": "keys-v1"});
            if let Some(step) = step {
                annotations[labels::ROTATION_STEP] = step.into();
            }
            let mut labels = serde_json::json!({labels::OWNER_UID: "owner-1"});
            if extra_label {
                labels["someone/else"] = "added".into();
            }
            let mut s = serde_json::from_value::<Secret>(serde_json::json!({
                "metadata": {"name": "state", "uid": uid, "labels": labels, "annotations": annotations}
            }))
            .unwrap();
            s.data = Some(
                [(
                    "bearerToken".to_string(),
                    ByteString(token.as_bytes().to_vec()),
                )]
                .into(),
            );
            s
        };
        let ours = record("u1", Some("invalidating"), "tok-a", false);
        let cases = [
            (
                "a label added by someone else",
                record("u1", Some("invalidating"), "tok-a", true),
                true,
            ),
            (
                "another step",
                record("u1", Some("minting"), "tok-a", false),
                false,
            ),
            (
                "another token",
                record("u1", Some("invalidating"), "tok-b", false),
                false,
            ),
            (
                "recreated record",
                record("u2", Some("invalidating"), "tok-a", false),
                false,
            ),
            (
                "no step any more",
                record("u1", None, "tok-a", false),
                false,
            ),
        ];
        for (what, latest, want) in cases {
            assert_eq!(same_rotation(&ours, &latest), want, "{what}");
        }
    }

    #[test]
    fn a_mint_keeps_the_rest_of_the_record_and_its_age_while_the_keys_stay() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let record = |from: &str, since: Option<&str>| {
            let mut a =
                serde_json::json!({labels::MINTED_FROM: from, labels::ROTATION_STEP: "minting"});
            if let Some(since) = since {
                a[labels::APP_SINCE] = since.into();
            }
            let mut s: Secret = serde_json::from_value(serde_json::json!({"metadata": {
                "name": "state", "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": a}}))
            .unwrap();
            s.data = Some([("userAccessToken".to_string(), ByteString(b"user".to_vec()))].into());
            s
        };
        let token = SecretValue::new("bearer-new");
        // (what, record, keys now, app-since after)
        let cases = [
            (
                "same keys",
                record("k1", Some("2026-06-01T00:00:00Z")),
                "k1",
                "2026-06-01T00:00:00Z",
            ),
            (
                "same keys, a record from before app-since",
                record("k1", None),
                "k1",
                "2026-01-01T00:00:00Z",
            ),
            (
                "keys replaced: young again",
                record("k0", Some("2026-06-01T00:00:00Z")),
                "k1",
                "2026-12-04T12:00:00Z",
            ),
        ];
        for (what, before, from, since) in cases {
            let after = with_minted(before, from, &token, Some("req-1".into()), now);
            let a = after.annotations();
            assert_eq!(
                a.get(labels::APP_SINCE).map(String::as_str),
                Some(since),
                "{what}"
            );
            assert_eq!(
                a.get(labels::MINTED_FROM).map(String::as_str),
                Some(from),
                "{what}"
            );
            assert_eq!(
                a.get(labels::BEARER_ROTATED_AT),
                Some(&now.to_string()),
                "{what}"
            );
            assert_eq!(
                a.get(labels::ROTATE_NOW_HANDLED).map(String::as_str),
                Some("req-1")
            );
            assert!(
                !a.contains_key(labels::ROTATION_STEP),
                "{what}: the step is over"
            );
            let data = after.data.as_ref().unwrap();
            assert_eq!(
                data["userAccessToken"].0, b"user",
                "{what}: the user token stays"
            );
            assert_eq!(data["bearerToken"].0, b"bearer-new", "{what}");
        }
    }

    #[test]
    fn the_state_machine_mints_rotates_and_resumes() {
        use Step::*;
        use Transition::*;
        let o = |step, minted, due| Observation {
            step,
            minted,
            due,
            can_invalidate: true,
            standing: Standing::Owner,
        };
        let follower = |step, minted, due, owner_rotated| Observation {
            standing: Standing::Follower { owner_rotated },
            ..o(step, minted, due)
        };
        let unsure = |step, minted, due| Observation {
            standing: Standing::Unknown,
            ..o(step, minted, due)
        };
        let without_owner = |step, minted, due| Observation {
            can_invalidate: false,
            ..o(step, minted, due)
        };
        let cases = [
            (
                "current, due, no owner token: nothing sent to X",
                without_owner(Idle, true, true),
                Blocked,
            ),
            (
                "no owner token, not due",
                without_owner(Idle, true, false),
                Nothing,
            ),
            (
                "no owner token, first mint",
                without_owner(Idle, false, true),
                Mint,
            ),
            ("no token yet", o(Idle, false, false), Mint),
            ("no token yet, due", o(Idle, false, true), Mint),
            ("keys replaced by a person", o(Idle, false, false), Mint),
            ("current, not due", o(Idle, true, false), Nothing),
            ("current, due", o(Idle, true, true), Rotate),
            (
                "crashed before or after invalidating",
                o(Invalidating, true, true),
                Resume(Invalidating),
            ),
            (
                "crashed while minting",
                o(Minting, true, false),
                Resume(Minting),
            ),
            (
                "crashed while minting, keys replaced",
                o(Minting, false, false),
                Resume(Minting),
            ),
            (
                "follower, due: nothing sent to X",
                follower(Idle, true, true, false),
                NotOwner,
            ),
            (
                "follower, not due",
                follower(Idle, true, false, false),
                Nothing,
            ),
            (
                "follower, the owner rotated: take the new token",
                follower(Idle, true, false, true),
                Follow,
            ),
            (
                "follower, due and the owner rotated",
                follower(Idle, true, true, true),
                Follow,
            ),
            (
                "follower, first mint",
                follower(Idle, false, true, false),
                Mint,
            ),
            (
                "follower with an interrupted rotation: no invalidation",
                follower(Invalidating, true, true, false),
                Follow,
            ),
            (
                "follower, crashed while minting",
                follower(Minting, false, false, false),
                Follow,
            ),
            (
                "ownership unknown, not due",
                unsure(Idle, true, false),
                Nothing,
            ),
            ("ownership unknown, due", unsure(Idle, true, true), Wait),
            (
                "ownership unknown, interrupted",
                unsure(Invalidating, true, false),
                Wait,
            ),
            (
                "ownership unknown, first mint",
                unsure(Idle, false, true),
                Mint,
            ),
        ];
        for (what, observation, want) in cases {
            assert_eq!(next(observation), want, "{what}");
        }
    }

    #[test]
    fn only_a_token_other_than_the_invalidated_one_counts_as_minted() {
        let a = SecretValue::new("bearer-a");
        let b = SecretValue::new("bearer-b");
        let cases = [
            ("first token, nothing invalidated", None, &a, true),
            ("another token", Some(&a), &b, true),
            ("X answered the old one", Some(&a), &a, false),
        ];
        for (what, old, new, want) in cases {
            assert_eq!(minted_anew(old, new), want, "{what}");
        }
    }

    /// `invalidate` against the in-process fake X: never twice, never on
    /// a guess.
    #[tokio::test]
    async fn invalidation_happens_once_and_only_when_x_still_accepts_the_token() {
        use crate::xapi::fake::FakeXApi;
        const VERIFY: &str = "GET /1.1/application/rate_limit_status.json";
        const INVALIDATE: &str = "POST /oauth2/invalidate_token";
        let data = |owner: bool| {
            let mut d = Data::from([
                ("apiKey".to_string(), b"k".to_vec()),
                ("apiKeySecret".to_string(), b"s".to_vec()),
            ]);
            if owner {
                d.insert("accessToken".into(), b"1-owner".to_vec());
                d.insert("accessTokenSecret".into(), b"owner-secret".to_vec());
            }
            d
        };
        let without_owner = keys(&data(false)).unwrap();
        let keys = keys(&data(true)).unwrap();
        let tier_limited =
            || XApiError::from_answer(VERIFY, 403, r#"{"errors":[{"code":453,"message":"tier"}]}"#);
        let old = SecretValue::new("bearer-old");
        let unavailable = || XApiError::from_answer(VERIFY, 503, "<html>");
        let refused = || XApiError::from_answer(INVALIDATE, 401, r#"{"errors":[{"code":89}]}"#);
        // (what, X's current token, resuming, queued failures, ok, calls)
        type Case = (
            &'static str,
            Option<&'static str>,
            bool,
            Vec<XApiError>,
            bool,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "first attempt",
                Some("bearer-old"),
                false,
                vec![],
                true,
                vec![INVALIDATE],
            ),
            (
                "resumed, X already refuses it",
                Some("bearer-new"),
                true,
                vec![],
                true,
                vec![VERIFY],
            ),
            (
                "resumed, X never got the call",
                Some("bearer-old"),
                true,
                vec![],
                true,
                vec![VERIFY, INVALIDATE],
            ),
            (
                "resumed, X unavailable: no guess",
                Some("bearer-old"),
                true,
                vec![unavailable()],
                false,
                vec![VERIFY],
            ),
            (
                "first attempt refused",
                Some("bearer-old"),
                false,
                vec![refused()],
                false,
                vec![INVALIDATE],
            ),
            (
                "first attempt, token unknown to X",
                Some("bearer-new"),
                false,
                vec![],
                false,
                vec![INVALIDATE],
            ),
            (
                "resumed, 453 (tier) authenticated the token: still invalidated",
                Some("bearer-old"),
                true,
                vec![tier_limited()],
                true,
                vec![VERIFY, INVALIDATE],
            ),
        ];
        for (what, current, resuming, failures, ok, calls) in cases {
            let x = FakeXApi::new();
            if let Some(c) = current {
                x.set_bearer(c);
            }
            x.fail_next(failures);
            let result = invalidate(&x, &keys, &old, resuming).await;
            assert_eq!(result.is_ok(), ok, "{what}: {result:?}");
            assert_eq!(x.calls(), calls, "{what}");
        }
        // Without the owner's token nothing is sent: X would refuse it.
        let x = FakeXApi::new();
        x.set_bearer("bearer-old");
        let refused = invalidate(&x, &without_owner, &old, false)
            .await
            .unwrap_err();
        assert_eq!(refused.reason, Reason::OwnerTokenMissing);
        assert!(
            refused.message.contains("accessTokenSecret"),
            "{}",
            refused.message
        );
        assert!(x.calls().is_empty(), "{:?}", x.calls());
    }
}
