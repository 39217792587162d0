//! Asks the apiserver whether a user may do something
//! (SubjectAccessReview): whether a scraper may read `/metrics`
//! (`metrics_auth.rs`), and whether a resource's ServiceAccount still
//! consents to what the operator does for it (`consent.rs`).

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

/// Who is asking: a user as the apiserver authenticated them.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub user: Option<String>,
    pub groups: Option<Vec<String>>,
    pub uid: Option<String>,
    pub extra: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

impl Subject {
    /// The ServiceAccount `namespace/name`, with the groups every
    /// ServiceAccount token carries.
    pub fn service_account(namespace: &str, name: &str) -> Subject {
        Subject {
            user: Some(format!("system:serviceaccount:{namespace}:{name}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ]),
            ..Default::default()
        }
    }
}

/// What is asked.
#[derive(Debug, Clone)]
pub enum Action {
    /// `verb` on one object.
    Object {
        namespace: String,
        group: String,
        resource: String,
        name: String,
        verb: String,
    },
    /// `verb` on a non-resource URL such as `/metrics`.
    Path { path: String, verb: String },
}

/// Whether `subject` may do `action`, as the apiserver's authorizers say.
pub async fn allowed(client: &Client, subject: &Subject, action: &Action) -> kube::Result<bool> {
    let mut spec = SubjectAccessReviewSpec {
        user: subject.user.clone(),
        groups: subject.groups.clone(),
        uid: subject.uid.clone(),
        extra: subject.extra.clone(),
        ..Default::default()
    };
    match action {
        Action::Object {
            namespace,
            group,
            resource,
            name,
            verb,
        } => {
            spec.resource_attributes = Some(ResourceAttributes {
                namespace: Some(namespace.clone()),
                group: Some(group.clone()),
                resource: Some(resource.clone()),
                name: Some(name.clone()),
                verb: Some(verb.clone()),
                ..Default::default()
            })
        }
        Action::Path { path, verb } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                path: Some(path.clone()),
                verb: Some(verb.clone()),
            })
        }
    }
    let review = SubjectAccessReview {
        spec,
        ..Default::default()
    };
    let answered = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answered.status.is_some_and(|s| s.allowed))
}
