//! Verification: after each change and periodically (hourly by default,
//! jittered per environment so a fleet does not verify at once), each
//! environment's credentials are checked with read-only X API calls only:
//! the bearer token with a cheap authenticated GET, the OAuth 1.0a access
//! token with `verify_credentials`, whose `x-access-level` header is the
//! app's permission, compared with `access.permission` (`OverPrivileged`).
//! A refusal never triggers anything destructive: it is a condition.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keyguard_credentials::{CredentialKey, SecretValue};
use kube::{Api, ResourceExt};

use crate::conditions::{self, ConditionType, News, Reason};
use crate::context::Context;
use crate::events::Kind;
use crate::objects::secret_data;
use crate::outcome::EnvOutcome;
use crate::projection::Data;
use crate::resource::{Environment, EnvironmentStatus, Permission, TwitterCredential};
use crate::state_record;
use crate::xapi::XApiError;

/// Pure: whether to verify now. A change always verifies; one that is
/// owed (it failed transiently) once its time has come, not sooner (a
/// rate limit is not retried before its reset); otherwise once per
/// `interval`, stretched or shrunk by up to 10% per environment.
pub fn is_due(
    last: Option<Timestamp>,
    changed: bool,
    owed: Option<Timestamp>,
    interval: Duration,
    key: &str,
    now: Timestamp,
) -> bool {
    if let Some(at) = owed {
        return changed || now >= at;
    }
    let Some(last) = last else { return true };
    changed || crate::schedule::until(now, last) >= jittered(interval, key)
}

/// `interval` scaled by 0.9..1.1, fixed per `key`.
pub fn jittered(interval: Duration, key: &str) -> Duration {
    let h = keyguard_credentials::fingerprint(key.as_bytes()).to_string();
    let n = u64::from_str_radix(&h["sha256:".len().."sha256:".len() + 4], 16).unwrap_or(0);
    interval.mul_f64(0.9 + 0.2 * (n as f64 / 65535.0))
}

fn signed(d: Duration) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or_default()
}

/// Pure: the permission level `x-access-level` names.
pub fn level_of(header: &str) -> Option<Permission> {
    match header {
        "read" => Some(Permission::Read),
        "read-write" => Some(Permission::ReadWrite),
        "read-write-directmessages" => Some(Permission::ReadWriteDirectMessages),
        _ => None,
    }
}

/// What the read-only calls found.
#[derive(Debug, Default)]
struct Findings {
    checked: Vec<&'static str>,
    /// Authenticated by X, whose answer was that the app's access tier
    /// lacks the endpoint (403 code 453 or `client-not-enrolled`).
    tier_limited: Vec<&'static str>,
    refused: Vec<String>,
    transient: Option<String>,
    /// X's rate limit resets after this long: verify again then, not sooner.
    wait: Option<Duration>,
    level: Option<String>,
    remaining: Option<u64>,
    limit: Option<u64>,
    /// The fingerprint of a bearer token X answered 401.
    bearer_rejected: Option<String>,
}

impl Findings {
    fn note(&mut self, what: &'static str, result: Result<crate::xapi::RateLimit, XApiError>) {
        match result {
            Ok(limits) => {
                self.checked.push(what);
                if limits.remaining.is_some() {
                    self.remaining = limits.remaining;
                    self.limit = limits.limit;
                }
            }
            Err(e) if e.is_tier_limited() => {
                self.checked.push(what);
                self.tier_limited.push(what);
            }
            Err(e) if e.is_transient() => {
                self.wait = self.wait.max(crate::refusal::operator_wait(&e));
                self.transient = Some(format!("{what}: {e}"));
            }
            Err(e) => self.refused.push(format!("{what}: {e}")),
        }
    }
}

/// Verifies, when due, an environment that synced (the source values
/// sync read are in `outcome`); returns whether to look again soon (a
/// transient failure) and when the next verification is due.
pub async fn verify(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    outcome: &mut EnvOutcome,
    now: Timestamp,
) -> (bool, Option<Timestamp>) {
    let EnvOutcome {
        status,
        changed,
        projected_from,
        ..
    } = outcome;
    let key = format!("{}/{}", tc.uid().unwrap_or_default(), env.name);
    let last = status.last_verified.as_ref().map(|t| t.0);
    let next = |at: Timestamp| {
        at.checked_add(signed(jittered(ctx.verify_interval, &key)))
            .ok()
    };
    let synced = conditions::is_true(&status.conditions, ConditionType::Synced);
    let Some(source) = projected_from.as_ref().filter(|_| synced) else {
        return (false, None);
    };
    let owed = status.verification_owed.as_ref().map(|t| t.0);
    if !is_due(last, *changed, owed, ctx.verify_interval, &key, now) {
        privilege(ctx, tc, env, status).await;
        return (false, owed.or_else(|| last.and_then(next)));
    }
    let findings = match check(ctx, tc, env, source).await {
        Ok(f) => f,
        Err(e) => Findings {
            transient: Some(format!("reading the state record: {e}")),
            ..Default::default()
        },
    };
    if findings.checked.is_empty() && findings.refused.is_empty() && findings.transient.is_none() {
        conditions::clear(&mut status.conditions, ConditionType::Verified);
        status.verification_owed = None;
        privilege(ctx, tc, env, status).await;
        return (false, None);
    }
    if let Some(why) = &findings.transient {
        tracing::info!(%why, "verification will be retried");
        return owe(ctx, status, &findings, now);
    }
    // A token someone else invalidated is minted again at the next
    // reconcile: soon, once, when it is first seen.
    let remint =
        findings.bearer_rejected.is_some() && findings.bearer_rejected != status.bearer_rejected;
    status.bearer_rejected = findings.bearer_rejected.clone();
    record(ctx, tc, env, status, findings, now).await;
    privilege(ctx, tc, env, status).await;
    (remint, next(now))
}

/// A verification that failed transiently is owed: rate limited, at the
/// reset (an earlier retry only costs reads and X calls); otherwise after
/// the usual short wait. Returns whether to look again soon, and when.
fn owe(
    ctx: &Context,
    status: &mut EnvironmentStatus,
    findings: &Findings,
    now: Timestamp,
) -> (bool, Option<Timestamp>) {
    // Whole seconds in status, so rounded up: never before the reset.
    let wait = findings.wait.unwrap_or(ctx.retry) + Duration::from_secs(1);
    let owed = now
        .checked_add(signed(wait))
        .ok()
        .map(conditions::whole_seconds);
    let at = owed.as_ref().map(|t| t.0);
    status.verification_owed = owed;
    (findings.wait.is_none(), at)
}

/// The read-only calls, for what the environment has: the bearer token
/// from its state record, the source's OAuth 1.0a user context from the
/// source values sync read (the version it projected from, not read
/// again: one GET fewer, and a person's change since is the next
/// reconcile's).
async fn check(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    source: &Data,
) -> kube::Result<Findings> {
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut f = Findings::default();
    if state_record::needs_state(env) {
        if let Some(token) = api
            .get_opt(&state_record::state_name(tc, env))
            .await?
            .and_then(|s| secret_data(&s).remove(CredentialKey::BearerToken.as_str()))
        {
            let token = SecretValue::new(token);
            let result = ctx.xapi.verify_bearer(&token).await;
            if matches!(result, Err(XApiError::Refused { status: 401, .. })) {
                f.bearer_rejected = Some(token.fingerprint().to_string());
            }
            f.note("bearerToken", result);
        }
    }
    if let Some(result) = ctx.xapi.verify_source_user_context(source).await {
        if let Ok((level, _)) = &result {
            f.level = level.clone();
        }
        f.note("accessToken", result.map(|(_, limits)| limits));
    }
    Ok(f)
}

/// Conditions, access level and Events from what the calls found.
async fn record(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    status: &mut EnvironmentStatus,
    f: Findings,
    now: Timestamp,
) {
    let generation = tc.metadata.generation;
    status.last_verified = Some(Time(now));
    status.verification_owed = None;
    status.rate_limit_remaining = f.remaining.map(|r| r as i64);
    status.rate_limit_limit = f.limit.map(|r| r as i64);
    let ok = f.refused.is_empty();
    let (reason, message) = if ok {
        let limited = if f.tier_limited.is_empty() {
            String::new()
        } else {
            format!(
                " ({} authenticated, but the app's access tier lacks the endpoint checked: 403 code 453)",
                f.tier_limited.join(" and ")
            )
        };
        (
            Reason::Verified,
            format!(
                "X accepted {} with read-only calls{limited}",
                f.checked.join(" and ")
            ),
        )
    } else {
        (
            Reason::VerificationFailed,
            format!("X refused {}", f.refused.join("; ")),
        )
    };
    let warn = conditions::set_warning(
        &mut status.conditions,
        ConditionType::Verified,
        ok,
        reason,
        message.clone(),
        generation,
        false,
        News::StatusChanged,
    );
    ctx.metrics.verified(tc, &env.name, ok);
    if warn {
        publish(
            ctx,
            tc,
            "VerificationFailed",
            &format!("{}: {message}", env.name),
        )
        .await;
    }
    status.access_level = f.level.clone().or(status.access_level.take());
}

/// Pure: the permission one OAuth 2.0 scope amounts to, by X's scope list
/// ("OAuth 2.0 Authorization Code Flow with PKCE"): `dm.*` needs direct
/// messages, `*.write` writing, and `*.read`, `offline.access` and
/// `users.email` reading. A scope not on that pattern counts as the widest,
/// so a person looks at it.
pub fn scope_permission(scope: &str) -> Permission {
    if scope.starts_with("dm.") {
        Permission::ReadWriteDirectMessages
    } else if scope.ends_with(".write") {
        Permission::ReadWrite
    } else if scope.ends_with(".read") || matches!(scope, "offline.access" | "users.email") {
        Permission::Read
    } else {
        Permission::ReadWriteDirectMessages
    }
}

/// Pure: what exceeds `declared`, as sentences: the OAuth 1.0a level X
/// reported (`x-access-level`), and the OAuth 2.0 scopes X granted above
/// it. `None` when X reported neither.
pub fn excess(level: &str, scopes: &[String], declared: Permission) -> Option<Vec<String>> {
    let observed = level_of(level);
    if observed.is_none() && scopes.is_empty() {
        return None;
    }
    let mut over = Vec::new();
    if observed.is_some_and(|l| l > declared) {
        over.push(format!(
            "X reports `{level}` for the OAuth 1.0a access token"
        ));
    }
    let wide: Vec<String> = scopes
        .iter()
        .filter(|s| scope_permission(s) > declared)
        .map(|s| format!("`{s}`"))
        .collect();
    if !wide.is_empty() {
        over.push(format!(
            "X granted the OAuth 2.0 user access token {}",
            wide.join(", ")
        ));
    }
    Some(over)
}

/// `OverPrivileged` from the last observed level and granted scopes and
/// the declared permission, on every reconcile (a spec change needs no new
/// X call).
pub async fn privilege(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    status: &mut EnvironmentStatus,
) {
    let generation = tc.metadata.generation;
    let level = status.access_level.clone().unwrap_or_default();
    let Some((declared, over)) = env.access.as_ref().and_then(|a| {
        Some((
            a.permission,
            excess(&level, &status.granted_scopes, a.permission)?,
        ))
    }) else {
        conditions::clear(&mut status.conditions, ConditionType::OverPrivileged);
        return;
    };
    if over.is_empty() {
        let message = "the observed permission does not exceed access.permission";
        let (type_, reason) = (ConditionType::OverPrivileged, Reason::WithinPermission);
        conditions::set(
            &mut status.conditions,
            type_,
            false,
            reason,
            message,
            generation,
        );
        return;
    }
    let declared = serde_json::to_value(declared)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let message = format!(
        "{}; access.permission is `{declared}`: lower the app's permission in the developer portal, or authorize the user token again with only the scopes it needs",
        over.join("; ")
    );
    let warn = conditions::set_warning(
        &mut status.conditions,
        ConditionType::OverPrivileged,
        true,
        Reason::OverPrivileged,
        message.clone(),
        generation,
        true,
        News::StatusChanged,
    );
    if warn {
        let note = format!("{}: {message}", env.name);
        publish(ctx, tc, "OverPrivileged", &note).await;
    }
}

async fn publish(ctx: &Context, tc: &TwitterCredential, reason: &str, note: &str) {
    ctx.events
        .publish(
            &kube::Resource::object_ref(tc, &()),
            Kind::Warning,
            reason,
            "Verify",
            note,
            None,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_verification_waits_for_the_reset_a_5xx_does_not() {
        let in_a_minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let limited = || XApiError::RateLimited {
            endpoint: "GET /2/users/me",
            reset: Some(in_a_minute),
        };
        let unavailable = || XApiError::Refused {
            endpoint: "GET /2/users/me",
            status: 503,
            detail: "Service Unavailable".into(),
        };
        let cases: [(&str, Vec<XApiError>, bool); 3] = [
            ("rate limited", vec![limited()], true),
            ("5xx", vec![unavailable()], false),
            ("both", vec![unavailable(), limited()], true),
        ];
        for (what, errors, waits) in cases {
            let mut f = Findings::default();
            for e in errors {
                f.note("bearerToken", Err(e));
            }
            assert!(f.transient.is_some(), "{what}");
            let wait = f.wait.map(|w| w.as_secs());
            assert_eq!(
                wait.is_some_and(|w| (50..=60).contains(&w)),
                waits,
                "{what}: {wait:?}"
            );
        }
    }

    #[test]
    fn verification_is_due_on_change_or_after_a_jittered_interval() {
        let hour = Duration::from_secs(3600);
        let t0 = Some("00:00:00");
        // (what, last verified, changed, now, due?)
        let cases = [
            ("never verified", None, false, "00:00:00", true),
            ("content changed", t0, true, "00:00:01", true),
            ("a minute later", t0, false, "00:01:00", false),
            (
                "54 min later (under any jitter)",
                t0,
                false,
                "00:53:59",
                false,
            ),
            (
                "66 min later (over any jitter)",
                t0,
                false,
                "01:06:01",
                true,
            ),
        ];
        for (what, last, changed, now, want) in cases {
            let due = is_due(last.map(at), changed, None, hour, "uid/prod", at(now));
            assert_eq!(due, want, "{what}");
        }
        let spread: std::collections::BTreeSet<u64> = (0..50)
            .map(|i| jittered(hour, &format!("uid/{i}")).as_secs())
            .collect();
        assert!(
            spread.len() > 10 && spread.iter().all(|s| (3240..=3960).contains(s)),
            "{spread:?}"
        );
    }

    /// Times of day on 2026-01-01.
    fn at(s: &str) -> Timestamp {
        format!("2026-01-01T{s}Z").parse().unwrap()
    }

    #[test]
    fn an_owed_verification_waits_for_its_time_unless_changed_again() {
        let hour = Duration::from_secs(3600);
        let (t0, reset) = (Some("00:00:00"), Some("00:15:00"));
        // (what, last verified, changed, owed at, now, due?)
        let cases = [
            ("before X's reset", t0, false, reset, "00:14:59", false),
            ("at the reset", t0, false, reset, "00:15:00", true),
            (
                "never verified, early",
                None,
                false,
                reset,
                "00:01:00",
                false,
            ),
            ("changed again", t0, true, reset, "00:01:00", true),
            (
                "past the interval",
                t0,
                false,
                Some("02:00:00"),
                "01:30:00",
                false,
            ),
        ];
        for (what, last, changed, owed, now, want) in cases {
            let due = is_due(
                last.map(at),
                changed,
                owed.map(at),
                hour,
                "uid/prod",
                at(now),
            );
            assert_eq!(due, want, "{what}");
        }
    }

    #[test]
    fn granted_scopes_are_compared_with_the_declared_permission() {
        use Permission::*;
        let scopes = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let read = "tweet.read users.read offline.access users.email";
        // (level, scopes, declared, what exceeds: None when nothing seen)
        let cases: [(&str, &str, Permission, Option<&[&str]>); 10] = [
            ("", "", Read, None),
            ("", read, Read, Some(&[])),
            ("", "tweet.read tweet.write", Read, Some(&["`tweet.write`"])),
            ("", "tweet.read tweet.write", ReadWrite, Some(&[])),
            ("", "dm.read", ReadWrite, Some(&["`dm.read`"])),
            (
                "",
                "dm.read dm.write tweet.write",
                ReadWriteDirectMessages,
                Some(&[]),
            ),
            (
                "",
                "tweet.moderate.write media.write",
                Read,
                Some(&["`tweet.moderate.write`", "`media.write`"]),
            ),
            ("", "some.future", ReadWrite, Some(&["`some.future`"])),
            ("read-write", "", Read, Some(&["read-write"])),
            ("read-write", "tweet.read", ReadWrite, Some(&[])),
        ];
        for (level, granted, declared, want) in cases {
            let got = excess(level, &scopes(granted), declared);
            match (got, want) {
                (None, None) => {}
                (Some(over), Some(want)) => {
                    let text = over.join("; ");
                    assert_eq!(
                        over.is_empty(),
                        want.is_empty(),
                        "{granted} vs {declared:?}: {text}"
                    );
                    for w in want {
                        assert!(
                            text.contains(w),
                            "{granted} vs {declared:?}: {text} lacks {w}"
                        );
                    }
                    for s in scopes(granted)
                        .iter()
                        .filter(|s| scope_permission(s) <= declared)
                    {
                        assert!(
                            !text.contains(&format!("`{s}`")),
                            "{s} is within {declared:?}: {text}"
                        );
                    }
                }
                (got, want) => panic!("{level} {granted} {declared:?}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn access_levels_order_like_permissions() {
        assert!(level_of("read-write-directmessages") > level_of("read-write"));
        assert!(level_of("read-write") > level_of("read"));
        assert_eq!(level_of("unknown"), None);
    }
}
