//! Where an environment's objects live: the target Secret's namespace and
//! name, and the Role and RoleBinding that grant reading it.

use kube::ResourceExt;

use crate::resource::Environment;

/// Where an environment's objects live.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub namespace: String,
    pub secret: String,
    /// Name of both the Role and the RoleBinding.
    pub access: String,
}

impl Target {
    pub fn of(tc: &impl kube::Resource, env: &Environment) -> Target {
        let namespace = env
            .target
            .namespace
            .clone()
            .unwrap_or_else(|| tc.namespace().unwrap_or_default());
        Target {
            access: access_name(&env.target.secret_name),
            secret: env.target.secret_name.clone(),
            namespace,
        }
    }

    pub fn secret_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.secret)
    }
}

/// Name of the Role and RoleBinding that grant `get` on `secret`.
pub fn access_name(secret: &str) -> String {
    let name = format!("keyguard-read-{secret}");
    if name.len() <= 253 {
        return name;
    }
    let hash = keyguard_credentials::fingerprint(secret.as_bytes()).to_string();
    let hash = hash.trim_start_matches("sha256:");
    format!("{}-{hash}", &name[..253 - hash.len() - 1])
}
