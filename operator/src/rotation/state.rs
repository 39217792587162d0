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
use crate::ownership::Ownership;
use crate::projection::Data;
use crate::resource::{Environment, TwitterCredential};
use crate::sync::check::{secret_data, Refusal, Teardown};

/// Whether the environment projects a credential the operator mints.
pub fn needs_state(env: &Environment) -> bool {
    env.target.keys.contains(&CredentialKey::BearerToken)
}

/// The state Secret of one environment, in the resource's namespace.
pub fn state_name(tc: &TwitterCredential, env: &Environment) -> String {
    let id = Sha256::digest(format!("{}/{}", tc.uid().unwrap_or_default(), env.name).as_bytes());
    format!("keyguard-state-{}", &hex::encode(id)[..16])
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
    if env.target.keys.contains(&CredentialKey::UserAccessToken) {
        return Err(Refusal::new(
            Reason::NotImplemented,
            "userAccessToken is minted by the rotation controller, which this operator version does not have yet",
            Teardown::Keep,
        ));
    }
    if !needs_state(env) {
        return Ok(Data::new());
    }
    let pending = || {
        Refusal::new(
            Reason::DerivedPending,
            "waiting for the bearer token to be minted",
            Teardown::Keep,
        )
        .soon()
    };
    let state = state
        .filter(|_| state_ownership == Some(&Ownership::Ours))
        .ok_or_else(pending)?;
    if state.annotations().get(labels::MINTED_FROM) != Some(&minted_from(source)) {
        return Err(pending());
    }
    let token = secret_data(state)
        .remove(CredentialKey::BearerToken.as_str())
        .ok_or_else(pending)?;
    Ok(Data::from([(
        CredentialKey::BearerToken.as_str().to_string(),
        token,
    )]))
}
