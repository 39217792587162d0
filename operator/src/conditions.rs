//! Condition types and reasons the operator reports, and setting them so
//! that `lastTransitionTime` moves only when the status does and an
//! unchanged reconcile writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// A status time as the apiserver keeps it (metav1.Time has whole
/// seconds). Computed times (`lastRotation` from an annotation, and what
/// follows from it) must be cut the same way, or every resync finds the
/// status changed and writes it again.
pub fn whole_seconds(t: k8s_openapi::jiff::Timestamp) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// Every condition type the operator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    /// Resource level: every environment is synced.
    Ready,
    /// The target Secret holds what the source and the state record say.
    Synced,
    /// The target namespace did not opt in (or withdrew its opt-in).
    TargetNotAllowed,
    /// An object the environment needs belongs to someone else.
    Conflict,
    /// A credential only a person can replace is past its `maxAge`.
    RotationDue,
    /// Read-only X API calls accepted the credentials.
    Verified,
    /// X reports a higher permission level than `access.permission`.
    OverPrivileged,
    /// The app's post usage reached `monitoring.usage.warnAtPercent`.
    UsageHigh,
    /// X refused the refresh token: a person must authorize the app again.
    ReauthorizationRequired,
    /// A rotation is due that the operator cannot start (for a bearer
    /// token: the source lacks the app owner's access token).
    RotationBlocked,
    /// Another environment (of this resource or another) projects the
    /// same source credential.
    CredentialShared,
    /// Resource level: the declared access review by people is due.
    AccessReviewDue,
}

impl ConditionType {
    pub const ALL: [ConditionType; 12] = [
        ConditionType::Ready,
        ConditionType::Synced,
        ConditionType::TargetNotAllowed,
        ConditionType::Conflict,
        ConditionType::RotationDue,
        ConditionType::Verified,
        ConditionType::OverPrivileged,
        ConditionType::UsageHigh,
        ConditionType::ReauthorizationRequired,
        ConditionType::RotationBlocked,
        ConditionType::CredentialShared,
        ConditionType::AccessReviewDue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Synced => "Synced",
            ConditionType::TargetNotAllowed => "TargetNotAllowed",
            ConditionType::Conflict => "Conflict",
            ConditionType::RotationDue => "RotationDue",
            ConditionType::Verified => "Verified",
            ConditionType::OverPrivileged => "OverPrivileged",
            ConditionType::UsageHigh => "UsageHigh",
            ConditionType::ReauthorizationRequired => "ReauthorizationRequired",
            ConditionType::RotationBlocked => "RotationBlocked",
            ConditionType::CredentialShared => "CredentialShared",
            ConditionType::AccessReviewDue => "AccessReviewDue",
        }
    }
}

/// Every condition reason the operator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Synced,
    TargetNotAllowed,
    Conflict,
    DuplicateTarget,
    SourceNotFound,
    SourceInvalid,
    /// A derived credential is not minted yet (or minting failed).
    DerivedPending,
    XApiError,
    WriteFailed,
    NotSynced,
    MaxAgeExceeded,
    WithinMaxAge,
    Verified,
    VerificationFailed,
    OverPrivileged,
    WithinPermission,
    UsageHigh,
    UsageNormal,
    UsageUnknown,
    ReauthorizationRequired,
    /// Namespaced mode: the resource's namespace has not granted the
    /// operator rights.
    NamespaceNotManaged,
    /// X invalidates a bearer token only with the app owner's access token,
    /// which the source lacks.
    OwnerTokenMissing,
    /// A source credential is also another environment's.
    CredentialShared,
    /// No other environment projects the same source credential.
    NotShared,
    /// Another environment owns the app's bearer token and rotates it.
    NotAppOwner,
    /// The resource's ServiceAccount may no longer do what it needs.
    ConsentWithdrawn,
    /// No access review was ever recorded (`accessReview.lastReviewed`).
    NeverReviewed,
    /// The last access review is older than `accessReview.every`.
    ReviewOverdue,
    /// The last access review is recent enough.
    ReviewedRecently,
}

impl Reason {
    pub const ALL: [Reason; 29] = [
        Reason::Synced,
        Reason::TargetNotAllowed,
        Reason::Conflict,
        Reason::DuplicateTarget,
        Reason::SourceNotFound,
        Reason::SourceInvalid,
        Reason::DerivedPending,
        Reason::XApiError,
        Reason::WriteFailed,
        Reason::NotSynced,
        Reason::MaxAgeExceeded,
        Reason::WithinMaxAge,
        Reason::Verified,
        Reason::VerificationFailed,
        Reason::OverPrivileged,
        Reason::WithinPermission,
        Reason::UsageHigh,
        Reason::UsageNormal,
        Reason::UsageUnknown,
        Reason::ReauthorizationRequired,
        Reason::NamespaceNotManaged,
        Reason::OwnerTokenMissing,
        Reason::CredentialShared,
        Reason::NotShared,
        Reason::NotAppOwner,
        Reason::ConsentWithdrawn,
        Reason::NeverReviewed,
        Reason::ReviewOverdue,
        Reason::ReviewedRecently,
    ];

    /// The reason a condition names, when it is one of the operator's.
    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::TargetNotAllowed => "TargetNotAllowed",
            Reason::Conflict => "Conflict",
            Reason::DuplicateTarget => "DuplicateTarget",
            Reason::SourceNotFound => "SourceNotFound",
            Reason::SourceInvalid => "SourceInvalid",
            Reason::DerivedPending => "DerivedPending",
            Reason::XApiError => "XApiError",
            Reason::WriteFailed => "WriteFailed",
            Reason::NotSynced => "NotSynced",
            Reason::MaxAgeExceeded => "MaxAgeExceeded",
            Reason::WithinMaxAge => "WithinMaxAge",
            Reason::Verified => "Verified",
            Reason::VerificationFailed => "VerificationFailed",
            Reason::OverPrivileged => "OverPrivileged",
            Reason::WithinPermission => "WithinPermission",
            Reason::UsageHigh => "UsageHigh",
            Reason::UsageNormal => "UsageNormal",
            Reason::UsageUnknown => "UsageUnknown",
            Reason::ReauthorizationRequired => "ReauthorizationRequired",
            Reason::NamespaceNotManaged => "NamespaceNotManaged",
            Reason::OwnerTokenMissing => "OwnerTokenMissing",
            Reason::CredentialShared => "CredentialShared",
            Reason::NotShared => "NotShared",
            Reason::NotAppOwner => "NotAppOwner",
            Reason::ConsentWithdrawn => "ConsentWithdrawn",
            Reason::NeverReviewed => "NeverReviewed",
            Reason::ReviewOverdue => "ReviewOverdue",
            Reason::ReviewedRecently => "ReviewedRecently",
        }
    }

    /// The environment-level condition a refusal of this reason also raises.
    pub fn flag(self) -> Option<ConditionType> {
        match self {
            Reason::TargetNotAllowed => Some(ConditionType::TargetNotAllowed),
            Reason::Conflict | Reason::DuplicateTarget => Some(ConditionType::Conflict),
            Reason::ReauthorizationRequired => Some(ConditionType::ReauthorizationRequired),
            _ => None,
        }
    }
}

/// Sets (or replaces) the condition of `type_`.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: bool,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    let status = status_text(status).to_string();
    let message = message.into();
    let reason = reason.as_str().to_string();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_.as_str()) {
        if c.status != status {
            c.last_transition_time = now();
        }
        c.status = status;
        c.reason = reason;
        c.message = message;
        c.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.as_str().to_string(),
        status,
        reason,
        message,
        last_transition_time: now(),
        observed_generation: generation,
    });
}

/// When setting a condition deserves a Warning Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// When it turns to the warning status.
    StatusChanged,
    /// Also when it stays there but says something new.
    StatusOrMessageChanged,
}

/// Sets the condition of `type_` and says whether a Warning Event is owed:
/// the condition is now at `warn_at` and was not before (or, with
/// [`News::StatusOrMessageChanged`], said something else). One place for
/// "warn only when it first turns on", so a resync never repeats an Event.
#[allow(clippy::too_many_arguments)]
pub fn set_warning(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: bool,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    warn_at: bool,
    news: News,
) -> bool {
    let message = message.into();
    let before = find(conditions, type_);
    let was_warning = before.is_some_and(|c| {
        c.status == status_text(warn_at) && (news == News::StatusChanged || c.message == message)
    });
    set(conditions, type_, status, reason, message, generation);
    status == warn_at && !was_warning
}

fn status_text(status: bool) -> &'static str {
    if status {
        "True"
    } else {
        "False"
    }
}

/// The status of the condition of `type_`, when it is set.
pub fn status(conditions: &[Condition], type_: ConditionType) -> Option<bool> {
    find(conditions, type_).map(|c| c.status == status_text(true))
}

/// Removes the condition of `type_`.
pub fn clear(conditions: &mut Vec<Condition>, type_: ConditionType) {
    conditions.retain(|c| c.type_ != type_.as_str());
}

pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    status(conditions, type_) == Some(true)
}

pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_times_are_whole_seconds() {
        let t: k8s_openapi::jiff::Timestamp = "2026-11-30T20:00:01.987654321Z".parse().unwrap();
        assert_eq!(
            super::whole_seconds(t).0.to_string(),
            "2026-11-30T20:00:01Z"
        );
        let round: k8s_openapi::jiff::Timestamp = "2026-11-30T20:00:01Z".parse().unwrap();
        assert_eq!(super::whole_seconds(round).0, round);
    }

    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_does() {
        let mut c = Vec::new();
        set(
            &mut c,
            ConditionType::Synced,
            true,
            Reason::Synced,
            "a",
            Some(1),
        );
        let first = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(2));
        set(
            &mut c,
            ConditionType::Synced,
            true,
            Reason::Synced,
            "b",
            Some(2),
        );
        assert_eq!(c[0].last_transition_time, first);
        assert_eq!(c[0].message, "b");
        set(
            &mut c,
            ConditionType::Synced,
            false,
            Reason::Conflict,
            "c",
            Some(2),
        );
        assert_ne!(c[0].last_transition_time, first);
        assert_eq!(c[0].reason, "Conflict");
        assert!(!is_true(&c, ConditionType::Synced));
        clear(&mut c, ConditionType::Synced);
        assert!(c.is_empty());
    }

    /// docs/conditions.md explains every condition type and reason.
    #[test]
    fn every_condition_and_reason_is_documented() {
        let doc = include_str!("../../docs/conditions.md");
        for t in ConditionType::ALL {
            assert!(
                doc.contains(&format!("| `{}` |", t.as_str())),
                "{t:?} is not in docs/conditions.md"
            );
        }
        for r in Reason::ALL {
            assert!(
                doc.contains(&format!("| `{}` |", r.as_str())),
                "{r:?} is not in docs/conditions.md"
            );
        }
    }

    #[test]
    fn every_reason_round_trips_and_others_are_not_reasons() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r), "{r:?}");
        }
        assert_eq!(Reason::parse("Bogus"), None);
        assert_eq!(Reason::parse(""), None);
    }

    #[test]
    fn a_warning_is_owed_only_when_news() {
        use News::*;
        type Case = (
            Option<(bool, &'static str)>,
            (bool, &'static str),
            bool,
            News,
            bool,
        );
        // (before: status and message, or unset), set to, warn at, news, owed
        let cases: [Case; 9] = [
            (None, (true, "a"), true, StatusChanged, true),
            (None, (false, "a"), true, StatusChanged, false),
            (Some((false, "a")), (true, "a"), true, StatusChanged, true),
            (Some((true, "a")), (true, "b"), true, StatusChanged, false),
            (
                Some((true, "a")),
                (true, "b"),
                true,
                StatusOrMessageChanged,
                true,
            ),
            (
                Some((true, "a")),
                (true, "a"),
                true,
                StatusOrMessageChanged,
                false,
            ),
            (None, (false, "x"), false, StatusChanged, true),
            (
                Some((false, "x")),
                (false, "y"),
                false,
                StatusChanged,
                false,
            ),
            (Some((true, "x")), (false, "y"), false, StatusChanged, true),
        ];
        for (i, (before, (status, message), warn_at, news, owed)) in cases.into_iter().enumerate() {
            let mut c = Vec::new();
            if let Some((s, m)) = before {
                set(
                    &mut c,
                    ConditionType::Verified,
                    s,
                    Reason::Verified,
                    m,
                    None,
                );
            }
            let got = set_warning(
                &mut c,
                ConditionType::Verified,
                status,
                Reason::Verified,
                message,
                None,
                warn_at,
                news,
            );
            assert_eq!(got, owed, "case {i}");
            assert_eq!(
                super::status(&c, ConditionType::Verified),
                Some(status),
                "case {i}"
            );
        }
    }
}
