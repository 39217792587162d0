//! Access review reminders (practice 5 of `docs/practices.md`). Who can
//! sign in to the app's developer portal and whether they use 2FA, who may
//! read the source Secrets, who is bound to the edit role: only people can
//! review that, but the operator can remember when. A resource declaring
//! `accessReview.every` gets `AccessReviewDue` (with a Warning Event when
//! it becomes due, and `keyguard_access_review_due` for an alert) once that
//! long has passed since `accessReview.lastReviewed`, which whoever did the
//! review sets. Nothing else changes: a reminder never blocks a sync.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::conditions::{self, ConditionType, News, Reason};
use crate::context::Context;
use crate::events::Kind;
use crate::resource::{AccessReview, TwitterCredential, TwitterCredentialStatus};

/// Where a declared review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// None was ever recorded: due now.
    Never,
    /// Due since this time.
    Overdue { since: Timestamp },
    /// Next due at this time.
    DueAt(Timestamp),
}

/// Pure: where `review` stands at `now`.
pub fn review(review: &AccessReview, now: Timestamp) -> Review {
    let every = crate::schedule::parse_duration(&review.every)
        .ok()
        .and_then(|d| SignedDuration::try_from(d).ok())
        .unwrap_or(SignedDuration::from_hours(24 * 90));
    let Some(last) = review.last_reviewed.as_ref().map(|t| t.0) else {
        return Review::Never;
    };
    let due = last.checked_add(every).unwrap_or(Timestamp::MAX);
    if now >= due {
        Review::Overdue { since: due }
    } else {
        Review::DueAt(due)
    }
}

/// Pure: the condition's status, reason and message.
pub fn condition(review: Review, declared: &AccessReview) -> (bool, Reason, String) {
    let by = declared
        .reviewed_by
        .as_deref()
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    match review {
        Review::Never => (
            true,
            Reason::NeverReviewed,
            "no access review recorded: review who can sign in to the app's developer portal (with 2FA), who may read the source Secrets and who may edit this resource, then set accessReview.lastReviewed".into(),
        ),
        Review::Overdue { since } => (
            true,
            Reason::ReviewOverdue,
            format!("an access review is due since {since} (every {}; last{by}): review who can sign in to the app's developer portal (with 2FA), who may read the source Secrets and who may edit this resource, then set accessReview.lastReviewed", declared.every),
        ),
        Review::DueAt(at) => (
            false,
            Reason::ReviewedRecently,
            format!("reviewed{by}; next review due {at}"),
        ),
    }
}

/// Sets `AccessReviewDue` and its metric, with a Warning Event when a
/// review becomes due; returns when the next one is due (to look again).
pub async fn remind(
    ctx: &Context,
    tc: &TwitterCredential,
    status: &mut TwitterCredentialStatus,
    now: Timestamp,
) -> Option<Timestamp> {
    let Some(declared) = tc.spec.access_review.as_ref() else {
        conditions::clear(&mut status.conditions, ConditionType::AccessReviewDue);
        status.next_access_review = None;
        ctx.metrics.access_review_due(tc, None);
        return None;
    };
    let at = review(declared, now);
    let (due, reason, message) = condition(at, declared);
    status.next_access_review = match at {
        Review::DueAt(t) => Some(conditions::whole_seconds(t)),
        Review::Never | Review::Overdue { .. } => None,
    };
    ctx.metrics.access_review_due(tc, Some(due));
    let warn = conditions::set_warning(
        &mut status.conditions,
        ConditionType::AccessReviewDue,
        due,
        reason,
        message.clone(),
        tc.metadata.generation,
        true,
        News::StatusChanged,
    );
    if warn {
        tracing::info!("access review due");
        let reference = kube::Resource::object_ref(tc, &());
        ctx.events
            .publish(
                &reference,
                Kind::Warning,
                "AccessReviewDue",
                "Remind",
                &message,
                None,
            )
            .await;
    }
    match at {
        Review::DueAt(t) => Some(t),
        Review::Never | Review::Overdue { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn declared(every: &str, last: Option<&str>, by: Option<&str>) -> AccessReview {
        AccessReview {
            every: every.into(),
            last_reviewed: last.map(|t| Time(t.parse().unwrap())),
            reviewed_by: by.map(Into::into),
        }
    }

    #[test]
    fn a_review_is_due_every_interval_after_the_last_one() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let cases = [
            (declared("2160h", None, None), Review::Never),
            (
                declared("2160h", Some("2026-11-01T00:00:00Z"), None),
                Review::DueAt(t("2027-01-30T00:00:00Z")),
            ),
            (
                declared("24h", Some("2026-12-03T12:00:00Z"), None),
                Review::Overdue {
                    since: t("2026-12-04T12:00:00Z"),
                },
            ),
            (
                declared("720h", Some("2026-09-01T00:00:00Z"), None),
                Review::Overdue {
                    since: t("2026-10-01T00:00:00Z"),
                },
            ),
        ];
        for (d, want) in cases {
            assert_eq!(review(&d, now), want, "{d:?}");
        }
    }

    #[test]
    fn the_condition_says_what_to_review_and_who_did_it_last() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let overdue = declared("24h", Some("2026-12-01T00:00:00Z"), Some("alice"));
        let (due, reason, message) = condition(review(&overdue, now), &overdue);
        assert!(due);
        assert_eq!(reason, Reason::ReviewOverdue);
        assert!(
            message.contains("last by alice") && message.contains("2FA"),
            "{message}"
        );
        let recent = declared("2160h", Some("2026-12-01T00:00:00Z"), Some("bob"));
        let (due, reason, message) = condition(review(&recent, now), &recent);
        assert!(!due);
        assert_eq!(reason, Reason::ReviewedRecently);
        assert!(
            message.starts_with("reviewed by bob; next review due 2027-03-01"),
            "{message}"
        );
        let never = declared("2160h", None, None);
        assert_eq!(
            condition(review(&never, now), &never).1,
            Reason::NeverReviewed
        );
    }
}
