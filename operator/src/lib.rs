//! keyguard-operator: keeps X (Twitter) API credentials synced into scoped
//! Secrets, verified, and rotated, as declared by `TwitterCredential`
//! resources.

#![forbid(unsafe_code)]

pub mod cli;
pub mod resource;

pub use resource::{TwitterCredential, TwitterCredentialSpec, TwitterCredentialStatus};

/// Errors of the operator library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("serializing the CRD: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
