//! The `TwitterCredential` custom resource: what a person declares, and the
//! status the operator reports back.
//!
//! Everything the apiserver can check itself is in the schema (patterns,
//! enums, bounds) or in CEL rules (`x-kubernetes-validations`), so a bad
//! resource is refused at `kubectl apply` with a message that names the
//! problem, before the operator ever sees it. Doc comments here become the
//! text of `kubectl explain`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use keyguard_credentials::CredentialKey;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A Go-style duration such as `720h`, `15m` or `1h30m`.
const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// A DNS-1123 label: Namespace and environment names.
const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS-1123 subdomain: Secret, ServiceAccount and workload names.
const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// X API credentials of one app, projected per environment into scoped
/// Secrets, verified against the X API and rotated on schedule.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "keyguard.dev",
    version = "v1alpha1",
    kind = "TwitterCredential",
    plural = "twittercredentials",
    singular = "twittercredential",
    shortname = "twcred",
    category = "keyguard",
    namespaced,
    status = "TwitterCredentialStatus",
    doc = "TwitterCredential declares, per environment, X (Twitter) API credentials: which source Secret holds them, which namespace and service accounts may read them, the permission they should have, and how they rotate. The operator projects them into scoped Secrets, verifies them against the X API and rotates what a program may; status holds fingerprints, never values.",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Environments","type":"string","jsonPath":".status.readyEnvironments","description":"Environments synced, of those declared"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.environments.all(e, self.environments.exists_one(f, f.name == e.name))").message("environment names must be unique within a TwitterCredential"))]
#[x_kube(validation = Rule::new("self.environments.all(e, self.environments.exists_one(f, f.target.secretName == e.target.secretName && (has(f.target.__namespace__) ? f.target.__namespace__ : '') == (has(e.target.__namespace__) ? e.target.__namespace__ : '')))").message("two environments must not write the same target Secret (same namespace and secretName)"))]
pub struct TwitterCredentialSpec {
    /// The environments (development, staging, production, ...) this app's
    /// credentials are projected into. Names must be unique.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub environments: Vec<Environment>,

    /// What happens to projected Secrets when this resource is deleted:
    /// `Delete` (the default) removes them, `Retain` leaves them in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Watching the app's X API usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,

    /// A periodic review, by people, of who can reach this app's
    /// credentials (see `docs/practices.md`): `AccessReviewDue` and a
    /// Warning Event once `every` has passed since `lastReviewed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_review: Option<AccessReview>,

    /// A ServiceAccount of this namespace whose rights the resource is
    /// held to on every reconcile: it must be allowed to `get` each source
    /// Secret and `patch` each restart target, or the environment projects
    /// nothing new and makes no X API call (`ConsentWithdrawn`). Removing
    /// its RoleBinding withdraws consent. The operator's
    /// `--default-service-account`, when set, is checked too, named or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<ServiceAccountName>,
}

/// What happens to projected Secrets when the TwitterCredential is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Remove the projected Secrets, Roles and RoleBindings.
    #[default]
    Delete,
    /// Keep the projected Secrets; remove only the Roles and RoleBindings.
    Retain,
}

/// One environment: where its credentials come from, where they go, who may
/// read them and how they rotate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.target.__namespace__) || self.target.secretName != self.source.secretRef.name").message("target.secretName must differ from the source Secret when the target is in the resource's own namespace: the projection would overwrite its own source"))]
pub struct Environment {
    /// Name of the environment, a DNS label such as `production`.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL_PATTERN))]
    pub name: String,

    /// Where the credentials come from.
    pub source: Source,

    /// Where the credentials are projected to.
    pub target: Target,

    /// Who may read the projected Secret, and which X permission level the
    /// credentials should have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,

    /// When credentials rotate. Without it nothing rotates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,

    /// Workloads restarted once (through a pod-template annotation holding a
    /// content hash) after the projected Secret's content changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub restart_targets: Vec<WorkloadRef>,

    /// This environment shares its source credentials with another
    /// environment on purpose (a canary that must use production's app,
    /// say). Without it, a source credential another environment also
    /// projects raises the `CredentialShared` warning: keys shared between
    /// environments are rotated, revoked and leaked together.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_shared_credentials: bool,
}

/// The source of an environment's credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// A Secret in the TwitterCredential's own namespace holding `apiKey`,
    /// `apiKeySecret` and optionally `accessToken`, `accessTokenSecret`,
    /// `clientId`, `clientSecret`, `refreshToken`. Secrets in other
    /// namespaces cannot be referenced.
    pub secret_ref: SecretRef,
}

/// A Secret in the TwitterCredential's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// The Secret an environment's credentials are projected into.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Namespace of the projected Secret; defaults to the TwitterCredential's
    /// own. Another namespace must opt in with the label
    /// `keyguard.dev/allow-from-<source namespace>: "true"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL_PATTERN))]
    pub namespace: Option<String>,

    /// Name of the projected Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: String,

    /// The credentials projected, and nothing else: least exposure. Derived
    /// ones (`bearerToken`, `userAccessToken`) are minted by the operator.
    #[schemars(length(min = 1, max = 9))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub keys: Vec<CredentialKey>,
}

/// Who may read the projected Secret, and the X permission level expected.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// The X app permission the credentials should have; a higher observed
    /// level (OAuth 1.0a `x-access-level`), or an OAuth 2.0 scope X granted
    /// above it (`tweet.write` for `read`, `dm.*` below
    /// `read-write-directmessages`), is reported as `OverPrivileged`.
    #[serde(default)]
    pub permission: Permission,

    /// ServiceAccounts in the target namespace granted `get` on exactly the
    /// projected Secret, through a Role and RoleBinding the operator owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub service_accounts: Vec<ServiceAccountName>,
}

/// Name of a ServiceAccount in the target namespace.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(transparent)]
pub struct ServiceAccountName(
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))] pub String,
);

/// X app permission levels, as the `x-access-level` header reports them.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    schemars::JsonSchema,
)]
pub enum Permission {
    /// Read posts and profile information.
    #[default]
    #[serde(rename = "read")]
    Read,
    /// Read and write posts.
    #[serde(rename = "read-write")]
    ReadWrite,
    /// Read, write and direct messages.
    #[serde(rename = "read-write-directmessages")]
    ReadWriteDirectMessages,
}

/// When each kind of credential rotates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Rotation of the app-only bearer token (invalidate, then mint anew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Schedule>,

    /// Refresh of the OAuth 2.0 user access token before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token: Option<UserTokenRotation>,

    /// API key and secret can only be replaced in the developer portal: the
    /// operator tracks their age and raises `RotationDue` past `maxAge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_keys: Option<MaxAge>,

    /// OAuth 1.0a access tokens can be revoked but not minted by a program:
    /// like consumer keys, tracked and reminded past `maxAge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_tokens: Option<MaxAge>,

    /// How long a replaced OAuth 1.0a access token stays valid after its
    /// successor (put in the source by a person) is projected; then the
    /// operator invalidates it with X. Unset: the old token is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub grace_period: Option<String>,
}

/// A rotation schedule: an interval or a cron expression, not both.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.every) != has(self.schedule)").message("set exactly one of `every` (an interval such as 720h) or `schedule` (a cron expression)"))]
pub struct Schedule {
    /// Interval between rotations, e.g. `720h`; at least `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("`every` must be at least 1m"))]
    pub every: Option<String>,

    /// Cron expression (five fields, UTC), e.g. `0 3 * * 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4}\S+)$"
    ))]
    pub schedule: Option<String>,
}

/// Refresh of OAuth 2.0 user access tokens, which live two hours.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserTokenRotation {
    /// Refresh this long before the access token expires, e.g. `15m`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) < duration('2h')").message("`refreshBefore` must be shorter than the 2h lifetime of X user access tokens"))]
    pub refresh_before: String,
}

/// A review only people can do (who can sign in to the app's developer
/// portal and whether they use 2FA, who may read the source Secrets, who
/// is bound to the edit role), which the operator remembers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessReview {
    /// How often, e.g. `2160h` (90 days); at least `24h`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('24h')").message("`every` must be at least 24h"))]
    pub every: String,

    /// When the last review was done, set by whoever did it (RFC 3339,
    /// e.g. `2026-12-01T00:00:00Z`). Unset: never, so one is due now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reviewed: Option<Time>,

    /// Who did the last review, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reviewed_by: Option<String>,
}

/// Age after which a credential only a person can replace is reported due.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaxAge {
    /// e.g. `2160h` (90 days); at least `1h`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1h')").message("`maxAge` must be at least 1h"))]
    pub max_age: String,
}

/// A workload to restart after its credentials change.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// Kind of the workload.
    pub kind: WorkloadKind,
    /// Name of the workload in the target namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// Workload kinds the operator can restart.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// Watching the app's X API usage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    /// Polling of `GET /2/usage/tweets` against the project's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageMonitoring>,
}

/// Polling of the project's post usage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UsageMonitoring {
    /// How often to poll, e.g. `1h`; at least `1m`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("`every` must be at least 1m"))]
    pub every: String,

    /// Warn when usage reaches this percentage of the cap (1-100).
    #[serde(default = "default_warn_at_percent")]
    // schemars calls a u8 `format: uint8`, which the apiserver does not know
    // and warns about on every `kubectl apply`.
    #[schemars(range(min = 1, max = 100), extend("format" = "int32"))]
    pub warn_at_percent: u8,
}

fn default_warn_at_percent() -> u8 {
    80
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwitterCredentialStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` and summary conditions across environments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// e.g. `2/3`: environments synced, of those declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_environments: Option<String>,

    /// The app's post usage against its project cap (`monitoring.usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageStatus>,

    /// When the next access review is due (`accessReview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_access_review: Option<Time>,

    /// Per-environment state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub environments: Vec<EnvironmentStatus>,
}

/// State of one environment. Never holds a credential value: fingerprints only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The environment's name.
    pub name: String,

    /// `namespace/name` of the projected Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_secret: Option<String>,

    /// Increments each time the projected content changes.
    #[serde(default)]
    pub revision: i64,

    /// Short SHA-256 prefix of the projected content, never a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,

    /// When the projected Secret was last written or confirmed current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced: Option<Time>,

    /// When a credential of this environment last rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation: Option<Time>,

    /// When the next rotation is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<Time>,

    /// When the credentials were last verified with read-only X API calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<Time>,

    /// Fingerprint of the bearer token X refused (401) at the last
    /// verification though this environment did not invalidate it: another
    /// resource of the same app rotated it. The next reconcile mints again
    /// without invalidating anything, and X returns the app's current token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_rejected: Option<String>,

    /// Permission level X reported for the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_level: Option<String>,

    /// The OAuth 2.0 scopes X granted the user access token at its last
    /// refresh (compared with `access.permission`: `OverPrivileged`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_scopes: Vec<String>,

    /// A declared workload's restart after a change of this environment
    /// failed (the write was refused or lost); it is retried until done,
    /// since the next reconcile no longer sees the change itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_pending: bool,

    /// A verification that was due (after a change, or on schedule) could
    /// not be done (X rate-limited it, or it failed transiently): it is
    /// owed, and done at this time (X's reset, or after a short wait),
    /// since the reconcile then no longer sees the change itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_owed: Option<Time>,

    /// `x-rate-limit-remaining` seen on the last verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_remaining: Option<i64>,

    /// `x-rate-limit-limit` of the same answer: the window's whole budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_limit: Option<i64>,

    /// One entry per projected key: its fingerprint (a short SHA-256
    /// prefix of the value, never the value) and since when it is live, so
    /// tools outside the cluster (`keyguard scan --known`) can recognise
    /// live credentials exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub credentials: Vec<CredentialFingerprint>,

    /// The credentials in the source Secret, by fingerprint, and since when
    /// the operator has seen each value: the age `rotation.consumerKeys`
    /// and `rotation.accessTokens` compare with `maxAge`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub source_credentials: Vec<CredentialFingerprint>,

    /// Synced, Verified, RotationDue, OverPrivileged, TargetNotAllowed,
    /// Conflict for this environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Post usage of the app's project, as `GET /2/usage/tweets` reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageStatus {
    pub project_usage: i64,
    pub project_cap: i64,
    /// Usage as a percentage of the cap.
    pub percent: i64,
    /// When it was polled.
    pub checked: Time,
}

/// A projected credential, recognisable without its value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialFingerprint {
    /// The key in the projected Secret, e.g. `bearerToken`.
    pub key: String,
    /// `sha256:` and a short hex prefix of the value's SHA-256.
    pub fingerprint: String,
    /// When this value was first projected.
    pub since: Time,
}

/// The CustomResourceDefinition as YAML, exactly as committed in `crds/`.
pub fn crd_yaml() -> crate::Result<String> {
    use kube::CustomResourceExt;
    let header =
        "# Generated by `keyguard-operator crd` from operator/src/resource.rs. Do not edit.\n";
    Ok(format!(
        "{header}{}",
        serde_yaml::to_string(&TwitterCredential::crd())?
    ))
}
