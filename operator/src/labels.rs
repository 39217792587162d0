//! Labels, annotations and names the operator writes and reads: the
//! contract between it and the objects it manages.

/// On every object the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "keyguard-operator");

/// Whether an object carries [`MANAGED_BY`] (anyone can set it: a hint for
/// which watch handles the object, never a proof of ownership).
pub fn is_managed(meta: &kube::api::ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}
/// UID of the owning TwitterCredential: a selector and a hint for people.
/// Proof of ownership is [`CLAIM`], which nobody else can compute.
pub const OWNER_UID: &str = "keyguard.dev/owner-uid";
/// `namespace/name` of the owning TwitterCredential.
pub const OWNER: &str = "keyguard.dev/owner";
/// The environment an object belongs to.
pub const ENVIRONMENT: &str = "keyguard.dev/environment";
/// The operator's HMAC over the object's identity and its owner's (see
/// `ownership.rs`): checked before every overwrite and delete.
pub const CLAIM: &str = "keyguard.dev/claim";
/// On a projected Secret: fingerprint of the source data it came from.
pub const SOURCE_FINGERPRINT: &str = "keyguard.dev/source-fingerprint";
/// On a projected Secret: fingerprint of its own data.
pub const CONTENT_FINGERPRINT: &str = "keyguard.dev/content-fingerprint";
/// On a restarted workload's pod template: the content that caused it.
pub const RESTARTED_FOR: &str = "keyguard.dev/restarted-for";
/// On a restarted workload (its own metadata): when the operator last
/// restarted it, for debouncing.
pub const RESTARTED_AT: &str = "keyguard.dev/restarted-at";
/// On a state Secret: fingerprint of the source keys its derived
/// credentials were minted from.
pub const MINTED_FROM: &str = "keyguard.dev/minted-from";
/// On a state record: the rotation step in progress (absent when idle),
/// written before each X API call.
pub const ROTATION_STEP: &str = "keyguard.dev/rotation-step";
/// On a state record: when its credential was last minted or rotated.
pub const LAST_ROTATION: &str = "keyguard.dev/last-rotation";
/// On a TwitterCredential: set to a new value to rotate now.
pub const ROTATE_NOW: &str = "keyguard.dev/rotate-now";
/// On a state record: the last rotate-now value handled.
pub const ROTATE_NOW_HANDLED: &str = "keyguard.dev/rotate-now-handled";
/// On a state record: fingerprint of the refresh token a person seeded in
/// the source, whose successors the record holds.
pub const REFRESH_SEEDED_FROM: &str = "keyguard.dev/refresh-seeded-from";
/// On a state record: when its user access token expires.
pub const USER_TOKEN_EXPIRES: &str = "keyguard.dev/user-token-expires";
/// On a retirement record: when the retired access token is invalidated.
pub const RETIRE_AFTER: &str = "keyguard.dev/retire-after";
/// On a retirement record: the invalidation was started (set before the
/// X API call).
pub const RETIREMENT_STEP: &str = "keyguard.dev/retirement-step";
/// Which part of an environment an object is: `state` for the record of
/// derived credentials (kept out of projections' selectors).
pub const PART: &str = "keyguard.dev/part";
/// A namespace label that lets TwitterCredentials in `<ns>` write into it.
pub fn allow_from(source_namespace: &str) -> String {
    format!("keyguard.dev/allow-from-{source_namespace}")
}
/// The finalizer that cleans up projected objects.
pub const FINALIZER: &str = "keyguard.dev/cleanup";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "keyguard-operator";
