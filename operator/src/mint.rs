//! Derived credentials (today the app-only bearer token) are minted here,
//! outside the sync path, and kept in a state Secret the operator owns in
//! the resource's own namespace. Sync projects what that record holds and
//! never reads a value back from a target Secret, so a value edited in a
//! target is put back, never adopted. The rotation controller will own
//! this record and every X API write.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use keyguard_credentials::{CredentialKey, SecretValue};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};

use crate::conditions::Reason;
use crate::controller::Context;
use crate::labels;
use crate::ownership::{Owner, Ownership};
use crate::projection::Data;
use crate::resource::{Environment, TwitterCredential};
use crate::sync::check::{secret_data, Refusal, Teardown};
use crate::sync::plan::managed_meta;

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
fn minted_from(source: &Data) -> String {
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

/// Mints what the environment needs and is not in its state record yet.
pub async fn ensure(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
) -> Result<(), Refusal> {
    if !needs_state(env) {
        return Ok(());
    }
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let read = |e: kube::Error| Refusal::api_error("reading", &e);
    // A missing or broken source is sync's to report.
    let Some(source) = api
        .get_opt(&env.source.secret_ref.name)
        .await
        .map_err(read)?
    else {
        return Ok(());
    };
    let source = secret_data(&source);
    let (Some(key), Some(secret)) = (
        source
            .get(CredentialKey::ApiKey.as_str())
            .filter(|v| !v.is_empty()),
        source
            .get(CredentialKey::ApiKeySecret.as_str())
            .filter(|v| !v.is_empty()),
    ) else {
        return Ok(());
    };
    let name = state_name(tc, env);
    let owner = Owner::of(tc);
    let existing = api.get_opt(&name).await.map_err(read)?;
    if let Some(s) = &existing {
        match ctx.claims.ownership("Secret", &s.metadata, &owner) {
            Ownership::Ours => {}
            _ => {
                return Err(Refusal::new(
                    Reason::Conflict,
                    format!("state Secret {ns}/{name} exists and is not managed by this TwitterCredential; it was left untouched"),
                    Teardown::Keep,
                ))
            }
        }
        if s.annotations().get(labels::MINTED_FROM) == Some(&minted_from(&source))
            && s.data
                .as_ref()
                .is_some_and(|d| d.contains_key(CredentialKey::BearerToken.as_str()))
        {
            return Ok(());
        }
    }
    let token = ctx
        .xapi
        .mint_bearer(
            &SecretValue::new(key.clone()),
            &SecretValue::new(secret.clone()),
        )
        .await
        .map_err(|e| {
            let r = Refusal::new(
                Reason::XApiError,
                format!("minting the bearer token failed: {e}"),
                Teardown::Keep,
            );
            if e.is_transient() {
                r.soon()
            } else {
                r
            }
        })?;
    let mut meta = managed_meta(&ctx.claims, "Secret", &owner, &env.name, &ns, &name);
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(labels::PART.into(), "state".into());
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(labels::MINTED_FROM.into(), minted_from(&source));
    let mut state = Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(
            [(
                CredentialKey::BearerToken.as_str().to_string(),
                ByteString(token.expose().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    let write = match existing {
        None => api.create(&PostParams::default(), &state).await,
        Some(s) => {
            state.metadata.resource_version = s.metadata.resource_version.clone();
            state.metadata.uid = s.metadata.uid.clone();
            api.replace(&name, &PostParams::default(), &state).await
        }
    };
    write.map_err(|e| Refusal::api_error(&format!("writing state Secret {ns}/{name}"), &e))?;
    tracing::info!(credential = %tc.name_any(), environment = %env.name, "minted a bearer token into the state record");
    Ok(())
}
