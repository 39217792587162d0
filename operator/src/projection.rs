//! What goes into a projected Secret: the declared keys and nothing else,
//! and fingerprints of it. Pure functions, unit-tested without a cluster.

use std::collections::BTreeMap;

use keyguard_credentials::{fingerprint, CredentialKey, Fingerprint};
use sha2::{Digest, Sha256};

/// Source Secret data, by key.
pub type Data = BTreeMap<String, Vec<u8>>;

/// Why an environment cannot be projected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error("source Secret {secret} has no key `{key}` ({what})")]
    MissingKey {
        secret: String,
        key: CredentialKey,
        what: &'static str,
    },
    #[error("source Secret {secret} has an empty value for `{key}`")]
    EmptyKey { secret: String, key: CredentialKey },
    #[error("source Secret {secret} holds no data")]
    EmptySource { secret: String },
}

/// The source keys a projected key needs.
pub fn required_source_keys(key: CredentialKey) -> Vec<CredentialKey> {
    match key {
        CredentialKey::BearerToken => vec![CredentialKey::ApiKey, CredentialKey::ApiKeySecret],
        CredentialKey::UserAccessToken => {
            vec![CredentialKey::ClientId, CredentialKey::RefreshToken]
        }
        other => vec![other],
    }
}

/// Checks the source holds what the declared keys need.
pub fn check_source(
    secret: &str,
    source: &Data,
    keys: &[CredentialKey],
) -> Result<(), ProjectionError> {
    if source.is_empty() {
        return Err(ProjectionError::EmptySource {
            secret: secret.into(),
        });
    }
    for key in keys {
        for needed in required_source_keys(*key) {
            match source.get(needed.as_str()) {
                None => {
                    return Err(ProjectionError::MissingKey {
                        secret: secret.into(),
                        key: needed,
                        what: if needed == *key {
                            "declared in target.keys"
                        } else {
                            "needed to mint a derived credential"
                        },
                    })
                }
                Some(v) if v.is_empty() => {
                    return Err(ProjectionError::EmptyKey {
                        secret: secret.into(),
                        key: needed,
                    })
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The projected data: each declared key from the source, or from
/// `derived` for minted credentials.
pub fn project(source: &Data, derived: &Data, keys: &[CredentialKey]) -> Data {
    keys.iter()
        .filter_map(|k| {
            let from = if k.is_derived() { derived } else { source };
            from.get(k.as_str())
                .map(|v| (k.as_str().to_string(), v.clone()))
        })
        .collect()
}

/// Fingerprint of a whole Secret's data (keys and values, order-free).
pub fn data_fingerprint(data: &Data) -> Fingerprint {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    }
    fingerprint(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> Data {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn projects_only_the_declared_keys() {
        let source = data(&[("apiKey", "k"), ("apiKeySecret", "s"), ("accessToken", "t")]);
        let derived = data(&[("bearerToken", "b")]);
        let out = project(
            &source,
            &derived,
            &[CredentialKey::BearerToken, CredentialKey::AccessToken],
        );
        assert_eq!(out, data(&[("accessToken", "t"), ("bearerToken", "b")]));
    }

    #[test]
    fn missing_keys_are_named_and_derived_needs_are_explained() {
        let source = data(&[("apiKey", "k")]);
        let err = check_source("team/keys", &source, &[CredentialKey::BearerToken]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "source Secret team/keys has no key `apiKeySecret` (needed to mint a derived credential)"
        );
        let err = check_source("team/keys", &source, &[CredentialKey::AccessToken]).unwrap_err();
        assert!(err
            .to_string()
            .contains("no key `accessToken` (declared in target.keys)"));
        assert!(matches!(
            check_source("s", &Data::new(), &[CredentialKey::ApiKey]),
            Err(ProjectionError::EmptySource { .. })
        ));
        let empty = data(&[("apiKey", "")]);
        assert!(matches!(
            check_source("s", &empty, &[CredentialKey::ApiKey]),
            Err(ProjectionError::EmptyKey { .. })
        ));
    }

    #[test]
    fn fingerprints_change_with_content_only() {
        let a = data(&[("apiKey", "k"), ("apiKeySecret", "s")]);
        let b = data(&[("apiKeySecret", "s"), ("apiKey", "k")]);
        assert_eq!(data_fingerprint(&a), data_fingerprint(&b));
        assert_ne!(
            data_fingerprint(&a),
            data_fingerprint(&data(&[("apiKey", "k2"), ("apiKeySecret", "s")]))
        );
        // Key/value boundaries matter.
        assert_ne!(
            data_fingerprint(&data(&[("ab", "c")])),
            data_fingerprint(&data(&[("a", "bc")]))
        );
    }
}
