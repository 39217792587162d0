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
/// On a state record: when it first minted a bearer token from its current
/// keys (`minted-from`): the oldest owns the app's token
/// (`rotation/app_owner.rs`).
pub const APP_SINCE: &str = "keyguard.dev/app-since";
/// On a state record: when its bearer token was last minted or rotated
/// (apart from the user token's refreshes, which `last-rotation` counts too).
pub const BEARER_ROTATED_AT: &str = "keyguard.dev/bearer-rotated-at";
/// On a state record: an HMAC, under the claim key, of its namespace, name,
/// `minted-from`, `app-since` and `bearer-rotated-at`, so no one who may
/// edit the record can make it the app's owner or feign a rotation.
pub const APP_CLAIM: &str = "keyguard.dev/app-claim";
/// On a TwitterCredential: set to a new value to rotate now.
pub const ROTATE_NOW: &str = "keyguard.dev/rotate-now";
/// On a state record: the last rotate-now value handled.
pub const ROTATE_NOW_HANDLED: &str = "keyguard.dev/rotate-now-handled";
/// On a state record: fingerprint of the refresh token a person seeded in
/// the source, whose successors the record holds.
pub const REFRESH_SEEDED_FROM: &str = "keyguard.dev/refresh-seeded-from";
/// On a state record: the OAuth 2.0 scopes X granted at the last refresh,
/// space-separated.
pub const GRANTED_SCOPES: &str = "keyguard.dev/granted-scopes";
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
/// On a projected Secret: the deletion policy of the resource that wrote
/// it, so a start-up sweep after the resource vanished (its finalizer
/// stripped while the operator was down) still honours `Retain`.
pub const DELETION_POLICY: &str = "keyguard.dev/deletion-policy";
/// The namespace label that lets TwitterCredentials in `<ns>` write into
/// it: `keyguard.dev/allow-from-<ns>`, or, for a namespace name too long
/// for a label key (over 52 characters: a key's name part holds 63),
/// `keyguard.dev/allow-from-sha256-<16 hex of the name's SHA-256>`.
/// Refusals name the exact key to set.
pub fn allow_from(source_namespace: &str) -> String {
    let plain = format!("allow-from-{source_namespace}");
    if plain.len() <= 63 {
        return format!("keyguard.dev/{plain}");
    }
    allow_from_hashed(source_namespace)
}

/// The hashed opt-in key, accepted for any namespace (so automation can
/// use one form for every name).
pub fn allow_from_hashed(source_namespace: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(source_namespace.as_bytes());
    format!(
        "keyguard.dev/allow-from-sha256-{}",
        &hex::encode(digest)[..16]
    )
}
/// The finalizer that cleans up projected objects.
pub const FINALIZER: &str = "keyguard.dev/cleanup";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "keyguard-operator";

#[cfg(test)]
mod tests {
    use super::*;

    /// A label key's name part: at most 63 characters, alphanumerics with
    /// `-`, `_` or `.` inside.
    fn valid_key(key: &str) -> bool {
        let Some(("keyguard.dev", name)) = key.split_once('/') else {
            return false;
        };
        let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        (1..=63).contains(&name.len())
            && name.chars().all(inner)
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
    }

    #[test]
    fn every_valid_namespace_name_has_an_opt_in_label() {
        for len in 1..=63 {
            let ns = "n".repeat(len);
            assert!(valid_key(&allow_from(&ns)), "{len}: {}", allow_from(&ns));
            assert!(valid_key(&allow_from_hashed(&ns)), "{len}");
        }
        assert_eq!(allow_from("team-news"), "keyguard.dev/allow-from-team-news");
        let long = "a".repeat(53);
        assert!(allow_from(&long).starts_with("keyguard.dev/allow-from-sha256-"));
        assert_ne!(allow_from_hashed("team-a"), allow_from_hashed("team-b"));
    }
}
