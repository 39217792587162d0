//! Usage monitoring (`spec.monitoring.usage`): polls the app's post usage
//! against its project cap with a bearer token one of the environments
//! already holds (no credential is minted for it), and raises `UsageHigh`
//! with a Warning Event at `warnAtPercent`.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use keyguard_credentials::{CredentialKey, SecretValue};
use kube::{Api, ResourceExt};

use crate::conditions::{self, ConditionType, News, Reason};
use crate::context::Context;
use crate::objects::secret_data;
use crate::resource::{TwitterCredential, TwitterCredentialStatus, UsageStatus};
use crate::schedule;
use crate::state_record;

/// Pure: usage as a whole percentage of the cap (0 when there is no cap).
pub fn percent(usage: u64, cap: u64) -> i64 {
    if cap == 0 {
        return 0;
    }
    ((usage as f64 / cap as f64) * 100.0).floor() as i64
}

/// Pure: whether to poll now.
pub fn is_due(last: Option<Timestamp>, every: &str, now: Timestamp) -> bool {
    let Some(last) = last else { return true };
    let every = schedule::parse_duration(every).unwrap_or(std::time::Duration::from_secs(3600));
    schedule::until(now, last) >= every
}

/// Polls when due and sets `usage` and `UsageHigh`; returns when to poll next.
pub async fn monitor(
    ctx: &Context,
    tc: &TwitterCredential,
    status: &mut TwitterCredentialStatus,
    now: Timestamp,
) -> Option<Timestamp> {
    let Some(usage) = tc.spec.monitoring.as_ref().and_then(|m| m.usage.as_ref()) else {
        status.usage = None;
        conditions::clear(&mut status.conditions, ConditionType::UsageHigh);
        return None;
    };
    let last = status.usage.as_ref().map(|u| u.checked.0);
    let every =
        schedule::parse_duration(&usage.every).unwrap_or(std::time::Duration::from_secs(3600));
    let next = |at: Timestamp| {
        at.checked_add(k8s_openapi::jiff::SignedDuration::try_from(every).unwrap_or_default())
            .ok()
    };
    if !is_due(last, &usage.every, now) {
        return last.and_then(next);
    }
    let generation = tc.metadata.generation;
    let Some(bearer) = a_bearer(ctx, tc, status).await else {
        conditions::set(
            &mut status.conditions,
            ConditionType::UsageHigh,
            false,
            Reason::UsageUnknown,
            "usage monitoring needs an environment that projects bearerToken",
            generation,
        );
        return None;
    };
    let (used, cap) = match ctx.xapi.usage(&bearer).await {
        Ok(u) => u,
        Err(e) => {
            tracing::info!(error = %e, "usage poll failed; will retry");
            return Some(
                now.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(60))
                    .unwrap_or(now),
            );
        }
    };
    record(ctx, tc, status, usage.warn_at_percent, (used, cap), now).await;
    next(now)
}

/// Sets `usage` and `UsageHigh` from a poll, with a Warning Event when
/// usage crosses the threshold.
async fn record(
    ctx: &Context,
    tc: &TwitterCredential,
    status: &mut TwitterCredentialStatus,
    warn_at_percent: u8,
    (used, cap): (u64, u64),
    now: Timestamp,
) {
    let generation = tc.metadata.generation;
    let pct = percent(used, cap);
    status.usage = Some(UsageStatus {
        project_usage: used as i64,
        project_cap: cap as i64,
        percent: pct,
        checked: Time(now),
    });
    ctx.metrics.usage_ratio(
        tc,
        if cap == 0 {
            0.0
        } else {
            used as f64 / cap as f64
        },
    );
    let high = pct >= i64::from(warn_at_percent);
    let message = format!(
        "{used} of {cap} posts used this period ({pct}%; warning at {}%)",
        warn_at_percent
    );
    let reason = if high {
        Reason::UsageHigh
    } else {
        Reason::UsageNormal
    };
    let warn = conditions::set_warning(
        &mut status.conditions,
        ConditionType::UsageHigh,
        high,
        reason,
        message.clone(),
        generation,
        true,
        News::StatusChanged,
    );
    if warn {
        ctx.events
            .publish(
                &kube::Resource::object_ref(tc, &()),
                crate::events::Kind::Warning,
                "UsageHigh",
                "Monitor",
                &message,
                None,
            )
            .await;
    }
}

/// A bearer token from the first environment whose state record holds one.
/// A bearer token one of the environments holds, of those whose consent
/// holds (`consent.rs`).
async fn a_bearer(
    ctx: &Context,
    tc: &TwitterCredential,
    status: &TwitterCredentialStatus,
) -> Option<SecretValue> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &tc.namespace().unwrap_or_default());
    let withdrawn = |name: &str| {
        status
            .environments
            .iter()
            .any(|e| e.name == name && crate::consent::withdrawn_in(e))
    };
    for env in tc
        .spec
        .environments
        .iter()
        .filter(|e| state_record::needs_state(e) && !withdrawn(&e.name))
    {
        if let Ok(Some(s)) = api.get_opt(&state_record::state_name(tc, env)).await {
            if let Some(token) = secret_data(&s).remove(CredentialKey::BearerToken.as_str()) {
                return Some(SecretValue::new(token));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_due() {
        assert_eq!(percent(1234, 10000), 12);
        assert_eq!(percent(8000, 10000), 80);
        assert_eq!(percent(5, 0), 0);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(is_due(None, "1h", at("2026-01-01T00:00:00Z")));
        assert!(!is_due(
            Some(at("2026-01-01T00:00:00Z")),
            "1h",
            at("2026-01-01T00:59:00Z")
        ));
        assert!(is_due(
            Some(at("2026-01-01T00:00:00Z")),
            "1h",
            at("2026-01-01T01:00:00Z")
        ));
    }
}
