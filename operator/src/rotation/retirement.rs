//! A person's replaced OAuth 1.0a access token is invalidated with X
//! `rotation.gracePeriod` after its successor was projected; both work in
//! between, so consumers switch over without an outage.
//!
//! The operator never reads values back from a target Secret (a tenant
//! could put someone else's token there and have it invalidated), so it
//! keeps its own copy of the OAuth 1.0a values it projected: the retirement
//! record, a Secret it owns in the resource's namespace beside the state
//! record. When a person's new values were checked (`portal.rs`) and
//! projected, the copy becomes the retired token with a deadline. At the
//! deadline the operator records that it is invalidating, asks X, and
//! forgets the token. X answers 401 for a token that is already invalid,
//! so a resumed invalidation never revokes anything twice.
//!
//! Without `gracePeriod` nothing is copied and nothing is invalidated: the
//! old token stays the person's to revoke.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use keyguard_credentials::{fingerprint, CredentialKey};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::events::Kind;
use crate::labels;
use crate::objects::secret_data;
use crate::projection::Data;
use crate::refusal::Refusal;
use crate::resource::{Environment, TwitterCredential};
use crate::schedule;
use crate::state_record::{new_record_named, record_name};
use crate::xapi::{oauth1_values, XApi};

/// The OAuth 1.0a values, in the record under these names when tracked
/// and under `retired.<name>` once retired.
const VALUES: [CredentialKey; 4] = [
    CredentialKey::ApiKey,
    CredentialKey::ApiKeySecret,
    CredentialKey::AccessToken,
    CredentialKey::AccessTokenSecret,
];
const RETIRED: &str = "retired.";

/// What the record and the source say, as fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Of the tracked access token, and of all four tracked values.
    pub tracked: Option<(String, String)>,
    /// Of the source's access token, and of all four source values.
    pub current: (String, String),
    /// Of the retired access token, and its deadline.
    pub retired: Option<(String, Timestamp)>,
    pub now: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Nothing,
    /// Copy the source's values into the record.
    Track,
    /// The tracked token was replaced: it becomes the retired one.
    Retire,
    /// The retired token's grace is over (or a newer swap ends it early).
    Invalidate,
    /// A person put the retired token back in use: forget, never revoke it.
    Forget,
}

/// Pure: the next step of the retirement of a replaced access token.
pub fn next(o: &Observation) -> Transition {
    let tracked_token = o.tracked.as_ref().map(|(token, _)| token);
    match &o.retired {
        Some((retired, _)) if *retired == o.current.0 => return Transition::Forget,
        Some((_, deadline)) if *deadline <= o.now || tracked_token != Some(&o.current.0) => {
            return Transition::Invalidate
        }
        _ => {}
    }
    match &o.tracked {
        None => Transition::Track,
        Some((token, _)) if *token != o.current.0 => match o.retired {
            // One retired token at a time: the older one goes first.
            Some(_) => Transition::Invalidate,
            None => Transition::Retire,
        },
        Some((_, all)) if *all != o.current.1 => Transition::Track,
        _ => Transition::Nothing,
    }
}

/// Whether the environment keeps a retirement record.
pub fn applies(env: &Environment) -> bool {
    grace_period(env).is_some() && env.target.keys.contains(&CredentialKey::AccessToken)
}

fn grace_period(env: &Environment) -> Option<std::time::Duration> {
    let text = env.rotation.as_ref()?.grace_period.as_ref()?;
    schedule::parse_duration(text).ok()
}

/// The retirement record of one environment.
pub fn record_of(tc: &TwitterCredential, env: &Environment) -> String {
    record_name("keyguard-retired", tc, env)
}

fn fingerprints(data: &Data, prefix: &str) -> Option<(String, String)> {
    let values: Vec<&Vec<u8>> = VALUES
        .iter()
        .map(|k| data.get(&format!("{prefix}{}", k.as_str())))
        .collect::<Option<_>>()?;
    let token = fingerprint(values[2]).to_string();
    // Length-prefixed, so no two different sets join into the same bytes.
    let joined: Vec<u8> = values
        .iter()
        .flat_map(|v| {
            (v.len() as u64)
                .to_le_bytes()
                .into_iter()
                .chain(v.iter().copied())
        })
        .collect();
    let all = fingerprint(&joined).to_string();
    Some((token, all))
}

/// Pure: the observation from the record's data and annotations.
pub fn observe(record: Option<&Secret>, source: &Data, now: Timestamp) -> Option<Observation> {
    let data = record.map(secret_data).unwrap_or_default();
    let deadline = record
        .and_then(|r| r.annotations().get(labels::RETIRE_AFTER))
        .and_then(|t| t.parse().ok());
    let retired = fingerprints(&data, RETIRED)
        .zip(deadline)
        .map(|((token, _), at)| (token, at));
    Some(Observation {
        tracked: fingerprints(&data, ""),
        current: fingerprints(source, "")?,
        retired,
        now,
    })
}

/// Runs the retirement of the environment after a successful sync of
/// `source` (the values projected: a source read again could already hold
/// a person's next values, and the projected token would never be tracked,
/// so never retired); returns when it wants looking at again (the retired
/// token's deadline).
pub async fn retire_when_due(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    source: &Data,
    now: Timestamp,
) -> Result<Option<Timestamp>, Refusal> {
    let Some(grace) = grace_period(env).filter(|_| applies(env)) else {
        return Ok(None);
    };
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let read = |e: kube::Error| Refusal::read_failed(&e);
    let source = source.clone();
    let record = api.get_opt(&record_of(tc, env)).await.map_err(read)?;
    // A tenant squatting the record's name gets nothing invalidated.
    crate::state_record::ensure_ours(ctx, tc, record.as_ref())?;
    let grace = SignedDuration::try_from(grace).unwrap_or_default();
    let mut record = record;
    // Ending an older retirement can make the newer swap's due at once.
    for _ in 0..2 {
        let Some(observation) = observe(record.as_ref(), &source, now) else {
            return Ok(None);
        };
        let transition = next(&observation);
        record = match transition {
            Transition::Nothing => break,
            Transition::Track => write(&api, ctx, tc, env, record, |d, _| track(d, &source)).await?,
            Transition::Retire => {
                let deadline = now.checked_add(grace).unwrap_or(now);
                let r = write(&api, ctx, tc, env, record, |d, a| {
                    retire(d, a, deadline);
                    track(d, &source);
                })
                .await?;
                let note = format!("{}: the replaced OAuth 1.0a access token stays valid until {deadline} (gracePeriod), then it is invalidated", env.name);
                publish(ctx, tc, "AccessTokenRetired", &note).await;
                r
            }
            Transition::Invalidate => invalidate(ctx, tc, env, &api, record).await?,
            Transition::Forget => write(&api, ctx, tc, env, record, forget).await?,
        }
        .into();
        if matches!(transition, Transition::Track | Transition::Retire) {
            break;
        }
    }
    Ok(record
        .as_ref()
        .and_then(|r| r.annotations().get(labels::RETIRE_AFTER))
        .and_then(|t| t.parse().ok()))
}

fn track(data: &mut Data, source: &Data) {
    for k in VALUES {
        if let Some(v) = source.get(k.as_str()) {
            data.insert(k.as_str().to_string(), v.clone());
        }
    }
}

fn retire(data: &mut Data, annotations: &mut Annotations, deadline: Timestamp) {
    for k in VALUES {
        if let Some(v) = data.get(k.as_str()).cloned() {
            data.insert(format!("{RETIRED}{}", k.as_str()), v);
        }
    }
    annotations.insert(labels::RETIRE_AFTER.into(), deadline.to_string());
}

fn forget(data: &mut Data, annotations: &mut Annotations) {
    data.retain(|k, _| !k.starts_with(RETIRED));
    annotations.remove(labels::RETIRE_AFTER);
    annotations.remove(labels::RETIREMENT_STEP);
}

type Annotations = std::collections::BTreeMap<String, String>;

/// Records the step, asks X to invalidate the retired token, forgets it.
async fn invalidate(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    api: &Api<Secret>,
    record: Option<Secret>,
) -> Result<Secret, Refusal> {
    let record = write(api, ctx, tc, env, record, |_, a| {
        a.insert(labels::RETIREMENT_STEP.into(), "invalidating".into());
    })
    .await?;
    let retired: Data = secret_data(&record)
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(RETIRED)?.to_string(), v)))
        .collect();
    if let Some(values) = oauth1_values(&retired) {
        revoke(ctx.xapi.as_ref(), &values).await?;
        ctx.metrics.rotated(tc, &env.name, "accessToken");
        let note = format!(
            "{}: the replaced OAuth 1.0a access token was invalidated after its gracePeriod",
            env.name
        );
        publish(ctx, tc, "AccessTokenInvalidated", &note).await;
    }
    write(api, ctx, tc, env, Some(record), forget).await
}

/// Pure decision around one X call: a 401 means the token is already
/// invalid (a resumed step, or a person revoked it): done, not an error.
async fn revoke(x: &dyn XApi, values: &crate::xapi::OAuth1Values) -> Result<(), Refusal> {
    match x.invalidate_access_token(&values.keys()).await {
        Ok(()) => Ok(()),
        Err(crate::xapi::XApiError::Refused { status: 401, .. }) => Ok(()),
        Err(e) => Err(Refusal::x_api(
            "invalidating the replaced OAuth 1.0a access token",
            &e,
        )),
    }
}

async fn publish(ctx: &Context, tc: &TwitterCredential, reason: &str, note: &str) {
    ctx.events
        .publish(
            &kube::Resource::object_ref(tc, &()),
            Kind::Normal,
            reason,
            "Retire",
            note,
            None,
        )
        .await;
}

/// Creates or replaces (resourceVersion as precondition) the record after
/// `change` to its data and annotations.
async fn write(
    api: &Api<Secret>,
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    record: Option<Secret>,
    change: impl FnOnce(&mut Data, &mut Annotations),
) -> Result<Secret, Refusal> {
    let name = record_of(tc, env);
    let exists = record.is_some();
    let mut record = record.unwrap_or_else(|| new_record_named(ctx, tc, env, &name));
    let mut data = secret_data(&record);
    change(
        &mut data,
        record
            .metadata
            .annotations
            .get_or_insert_with(Default::default),
    );
    record.data = Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect());
    let written = match exists {
        true => api.replace(&name, &PostParams::default(), &record).await,
        false => api.create(&PostParams::default(), &record).await,
    };
    written.map_err(|e| Refusal::write_failed(&format!("writing retirement record {name}"), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_token_is_retired_then_invalidated_once() {
        use Transition::*;
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let fp = |token: &str, all: &str| (token.to_string(), all.to_string());
        let o = |tracked: Option<(String, String)>,
                 current: (String, String),
                 retired: Option<(&str, Timestamp)>| Observation {
            tracked,
            current,
            retired: retired.map(|(t, at)| (t.to_string(), at)),
            now: t0,
        };
        let cases = [
            ("first sight", o(None, fp("a", "a1"), None), Track),
            (
                "unchanged",
                o(Some(fp("a", "a1")), fp("a", "a1"), None),
                Nothing,
            ),
            (
                "consumer keys changed, same token",
                o(Some(fp("a", "a1")), fp("a", "a2"), None),
                Track,
            ),
            (
                "a new token projected",
                o(Some(fp("a", "a1")), fp("b", "b1"), None),
                Retire,
            ),
            (
                "within grace",
                o(Some(fp("b", "b1")), fp("b", "b1"), Some(("a", later))),
                Nothing,
            ),
            (
                "grace over",
                o(Some(fp("b", "b1")), fp("b", "b1"), Some(("a", t0))),
                Invalidate,
            ),
            (
                "another swap within grace ends it",
                o(Some(fp("b", "b1")), fp("c", "c1"), Some(("a", later))),
                Invalidate,
            ),
            (
                "the old token put back",
                o(Some(fp("b", "b1")), fp("a", "a1"), Some(("a", later))),
                Forget,
            ),
        ];
        for (what, observation, want) in cases {
            assert_eq!(next(&observation), want, "{what}");
        }
    }

    #[tokio::test]
    async fn a_token_x_already_refuses_is_not_revoked_again() {
        use crate::xapi::fake::FakeXApi;
        let data: Data = VALUES
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    format!("v-{}", k.as_str()).into_bytes(),
                )
            })
            .collect();
        let values = oauth1_values(&data).unwrap();
        let x = FakeXApi::new();
        revoke(&x, &values).await.unwrap();
        assert!(x.is_revoked("v-accessToken"));
        revoke(&x, &values)
            .await
            .expect("a second attempt finds it revoked: done");
        let unavailable =
            crate::xapi::XApiError::from_answer("POST /1.1/oauth/invalidate_token", 503, "");
        let y = FakeXApi::new();
        y.fail_next([unavailable]);
        assert!(
            revoke(&y, &values).await.is_err(),
            "X unavailable: try again later"
        );
        assert!(!y.is_revoked("v-accessToken"));
    }
}
