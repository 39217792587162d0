//! The state record of an environment's derived credentials (today the
//! app-only bearer token): a Secret the operator owns in the resource's own
//! namespace, written only by the rotation controller, which also records
//! there the step a rotation is at before each X API call. Sync projects
//! what this record holds and never reads a value back from a target
//! Secret, so a value edited in a target is put back, never adopted.

use k8s_openapi::api::core::v1::Secret;
use keyguard_credentials::CredentialKey;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::conditions::Reason;
use crate::labels;
use crate::objects::secret_data;
use crate::objects::ObjectKind;
use crate::ownership::Ownership;
use crate::projection::Data;
use crate::refusal::{Refusal, Teardown};
use crate::resource::{Environment, TwitterCredential};

/// Whether the environment projects a credential the operator mints.
pub fn needs_state(env: &Environment) -> bool {
    env.target.keys.iter().any(|k| k.is_derived())
}

/// Refuses when a state record exists and is not provably the operator's
/// for this resource (a tenant squatting its name, say).
pub fn ensure_ours(
    ctx: &crate::context::Context,
    tc: &TwitterCredential,
    state: Option<&Secret>,
) -> Result<(), Refusal> {
    let Some(s) = state else { return Ok(()) };
    if ctx.claims.ownership(
        ObjectKind::Secret,
        &s.metadata,
        &crate::ownership::Owner::of(tc),
    ) == Ownership::Ours
    {
        return Ok(());
    }
    Err(Refusal::new(
        Reason::Conflict,
        format!(
            "state Secret {}/{} exists and is not managed by this TwitterCredential; it was left untouched",
            tc.namespace().unwrap_or_default(),
            s.name_any()
        ),
        Teardown::Keep,
    ))
}

/// A new, empty state record for the environment, claimed by the operator.
pub fn new_record(
    ctx: &crate::context::Context,
    tc: &TwitterCredential,
    env: &Environment,
) -> Secret {
    new_record_named(ctx, tc, env, &state_name(tc, env))
}

/// A new, empty record named `name` in the resource's namespace, claimed
/// by the operator and cleaned up with the resource like the state record.
pub fn new_record_named(
    ctx: &crate::context::Context,
    tc: &TwitterCredential,
    env: &Environment,
    name: &str,
) -> Secret {
    let ns = tc.namespace().unwrap_or_default();
    let name = name.to_string();
    let owner = crate::ownership::Owner::of(tc);
    let mut meta = crate::objects::managed_meta(
        &ctx.claims,
        ObjectKind::Secret,
        &owner,
        &env.name,
        &ns,
        &name,
    );
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(labels::PART.into(), "state".into());
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The state Secret of one environment, in the resource's namespace.
pub fn state_name(tc: &TwitterCredential, env: &Environment) -> String {
    record_name("keyguard-state", tc, env)
}

/// A record of one environment: `prefix` and a digest of the resource's
/// uid and the environment's name (so a recreated resource starts afresh).
pub fn record_name(prefix: &str, tc: &TwitterCredential, env: &Environment) -> String {
    let id = Sha256::digest(format!("{}/{}", tc.uid().unwrap_or_default(), env.name).as_bytes());
    format!("{prefix}-{}", &hex::encode(id)[..16])
}

/// Fingerprint of the keys a bearer token is minted from.
pub fn minted_from(source: &Data) -> String {
    let key = source
        .get(CredentialKey::ApiKey.as_str())
        .cloned()
        .unwrap_or_default();
    let secret = source
        .get(CredentialKey::ApiKeySecret.as_str())
        .cloned()
        .unwrap_or_default();
    let pair = Data::from([
        ("apiKey".to_string(), key),
        ("apiKeySecret".to_string(), secret),
    ]);
    crate::projection::data_fingerprint(&pair).to_string()
}

/// Pure: the derived values sync may project, from the state record.
pub fn derived_for(
    env: &Environment,
    source: &Data,
    state: Option<&Secret>,
    state_ownership: Option<&Ownership>,
) -> Result<Data, Refusal> {
    if !needs_state(env) {
        return Ok(Data::new());
    }
    let pending = |what: &str| {
        Refusal::new(
            Reason::DerivedPending,
            format!("waiting for the {what} to be minted"),
            Teardown::Keep,
        )
        .soon()
    };
    let state = state.filter(|_| state_ownership == Some(&Ownership::Ours));
    let mut derived = Data::new();
    if env.target.keys.contains(&CredentialKey::BearerToken) {
        let state = state.ok_or_else(|| pending("bearer token"))?;
        if state.annotations().get(labels::MINTED_FROM) != Some(&minted_from(source)) {
            return Err(pending("bearer token"));
        }
        let token = secret_data(state)
            .remove(CredentialKey::BearerToken.as_str())
            .ok_or_else(|| pending("bearer token"))?;
        derived.insert(CredentialKey::BearerToken.as_str().to_string(), token);
    }
    if env.target.keys.contains(&CredentialKey::UserAccessToken) {
        let seed = source
            .get(CredentialKey::RefreshToken.as_str())
            .cloned()
            .unwrap_or_default();
        let current = state.filter(|s| {
            s.annotations().get(labels::REFRESH_SEEDED_FROM)
                == Some(&keyguard_credentials::fingerprint(&seed).to_string())
        });
        let token = current
            .and_then(|s| secret_data(s).remove(CredentialKey::UserAccessToken.as_str()))
            .ok_or_else(|| pending("user access token"))?;
        derived.insert(CredentialKey::UserAccessToken.as_str().to_string(), token);
    }
    Ok(derived)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn env(keys: &str) -> Environment {
        serde_yaml::from_str(&format!(
            "{{name: prod, source: {{secretRef: {{name: k}}}}, target: {{secretName: out, keys: [{keys}]}}}}"
        ))
        .unwrap()
    }

    fn source() -> Data {
        [
            ("apiKey", "key"),
            ("apiKeySecret", "secret"),
            ("refreshToken", "seed"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
    }

    /// A state record holding `data`, minted from `minted` keys (the
    /// source's when `None`) and seeded from the source's refresh token.
    fn record(data: &[(&str, &str)], minted: Option<&str>) -> Secret {
        let mut s = Secret::default();
        let minted = minted.map_or_else(|| minted_from(&source()), str::to_string);
        let seeded = keyguard_credentials::fingerprint(b"seed").to_string();
        s.metadata.annotations = Some(
            [
                (labels::MINTED_FROM.to_string(), minted),
                (labels::REFRESH_SEEDED_FROM.to_string(), seeded),
            ]
            .into(),
        );
        let bytes = |v: &str| ByteString(v.as_bytes().to_vec());
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), bytes(v)))
                .collect(),
        );
        s
    }

    /// (what, keys, record, its ownership, derived keys or None for
    /// DerivedPending)
    type DerivedCase = (
        &'static str,
        &'static str,
        Option<Secret>,
        Option<Ownership>,
        Option<Vec<&'static str>>,
    );

    fn derived_cases() -> Vec<DerivedCase> {
        let bearer = [("bearerToken", "b1")];
        let both = [("bearerToken", "b1"), ("userAccessToken", "u1")];
        let ours = Some(Ownership::Ours);
        let foreign = Some(Ownership::Foreign);
        vec![
            (
                "nothing derived: no record needed",
                "apiKey",
                None,
                None,
                Some(vec![]),
            ),
            ("not minted yet", "bearerToken", None, None, None),
            (
                "minted",
                "bearerToken",
                Some(record(&bearer, None)),
                ours.clone(),
                Some(vec!["bearerToken"]),
            ),
            (
                "a record someone else wrote is ignored",
                "bearerToken",
                Some(record(&bearer, None)),
                foreign,
                None,
            ),
            (
                "minted from other keys",
                "bearerToken",
                Some(record(&bearer, Some("sha256:old"))),
                ours.clone(),
                None,
            ),
            (
                "recorded without the token",
                "bearerToken",
                Some(record(&[], None)),
                ours.clone(),
                None,
            ),
            (
                "both derived",
                "bearerToken, userAccessToken",
                Some(record(&both, None)),
                ours.clone(),
                Some(vec!["bearerToken", "userAccessToken"]),
            ),
            (
                "the user token not refreshed yet",
                "bearerToken, userAccessToken",
                Some(record(&bearer, None)),
                ours,
                None,
            ),
        ]
    }

    #[test]
    fn derived_values_come_only_from_our_record_of_the_current_keys() {
        let cases = derived_cases();
        for (what, keys, state, ownership, want) in cases {
            let got = derived_for(&env(keys), &source(), state.as_ref(), ownership.as_ref());
            match (got, want) {
                (Ok(data), Some(want)) => {
                    assert_eq!(
                        data.keys().map(String::as_str).collect::<Vec<_>>(),
                        want,
                        "{what}"
                    );
                }
                (Err(refusal), None) => {
                    assert_eq!(refusal.reason, Reason::DerivedPending, "{what}");
                    assert!(refusal.retry_soon, "{what}: looked at again soon");
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}
