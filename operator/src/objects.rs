//! The operator's own Kubernetes objects, as every stage handles them: the
//! labels, annotations and claim each one carries, a Secret's data, and a
//! deletion of exactly the object that was observed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ObjectMeta, Preconditions};
use kube::{Api, Client};

use crate::labels::{self, MANAGED_BY};
pub use crate::object_kind::ObjectKind;
use crate::ownership::{ClaimKey, Owner};
use crate::projection::Data;

/// An object to delete, exactly as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub kind: ObjectKind,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Existing {
    pub fn of(kind: ObjectKind, meta: &ObjectMeta) -> Existing {
        Existing {
            kind,
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
        }
    }
}

/// Labels, annotations and the claim every managed object carries.
pub fn managed_meta(
    key: &ClaimKey,
    kind: ObjectKind,
    owner: &Owner,
    environment: &str,
    namespace: &str,
    name: &str,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(BTreeMap::from([
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (labels::OWNER_UID.into(), owner.uid.clone()),
            (labels::ENVIRONMENT.into(), environment.into()),
        ])),
        annotations: Some(BTreeMap::from([
            (
                labels::OWNER.into(),
                format!("{}/{}", owner.namespace, owner.name),
            ),
            (
                labels::CLAIM.into(),
                key.claim(kind, namespace, name, owner),
            ),
        ])),
        ..Default::default()
    }
}

/// A Secret's data by key.
pub fn secret_data(secret: &Secret) -> Data {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// Deletes exactly the observed object: same uid, same resourceVersion.
pub async fn delete(client: &Client, namespace: &str, e: &Existing) -> kube::Result<()> {
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: e.uid.clone(),
            resource_version: e.resource_version.clone(),
        }),
        ..Default::default()
    };
    match e.kind {
        ObjectKind::Secret => Api::<Secret>::namespaced(client.clone(), namespace)
            .delete(&e.name, &dp)
            .await
            .map(|_| ()),
        ObjectKind::Role => Api::<Role>::namespaced(client.clone(), namespace)
            .delete(&e.name, &dp)
            .await
            .map(|_| ()),
        ObjectKind::RoleBinding => Api::<RoleBinding>::namespaced(client.clone(), namespace)
            .delete(&e.name, &dp)
            .await
            .map(|_| ()),
    }
}
