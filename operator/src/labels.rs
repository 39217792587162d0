//! Labels, annotations and names the operator writes and reads: the
//! contract between it and the objects it manages.

/// On every object the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "keyguard-operator");
/// UID of the owning TwitterCredential (owner references cannot cross
/// namespaces, so ownership is a label plus an annotation).
pub const OWNER_UID: &str = "keyguard.dev/owner-uid";
/// `namespace/name` of the owning TwitterCredential.
pub const OWNER: &str = "keyguard.dev/owner";
/// The environment an object belongs to.
pub const ENVIRONMENT: &str = "keyguard.dev/environment";
/// Marks a source Secret the operator reads, so it is watched by label.
pub const SOURCE: &str = "keyguard.dev/source";
/// On a source Secret: names of the TwitterCredentials that read it.
pub const REFERENCED_BY: &str = "keyguard.dev/referenced-by";
/// On a projected Secret: fingerprint of the source data it came from.
pub const SOURCE_FINGERPRINT: &str = "keyguard.dev/source-fingerprint";
/// On a projected Secret: fingerprint of its own data.
pub const CONTENT_FINGERPRINT: &str = "keyguard.dev/content-fingerprint";
/// On a restarted workload's pod template: the content that caused it.
pub const RESTARTED_FOR: &str = "keyguard.dev/restarted-for";
/// A namespace label that lets TwitterCredentials in `<ns>` write into it.
pub fn allow_from(source_namespace: &str) -> String {
    format!("keyguard.dev/allow-from-{source_namespace}")
}
/// The finalizer that cleans up projected objects.
pub const FINALIZER: &str = "keyguard.dev/cleanup";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "keyguard-operator";
