//! Where the operator may act: the whole cluster, or, in namespaced mode
//! (`--watch-namespaces`), only the namespaces that granted it rights by a
//! RoleBinding. In namespaced mode it watches, lists and writes Secrets,
//! Roles and RoleBindings only there, and refuses a resource or a target
//! outside them with a condition instead of a failed request.

use std::collections::BTreeSet;

use kube::core::NamespaceResourceScope;
use kube::{Api, Client, Resource};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    Cluster,
    Namespaces(BTreeSet<String>),
}

impl Scope {
    /// Cluster-wide for an empty list.
    pub fn from_list(namespaces: &[String]) -> Self {
        let set: BTreeSet<String> = namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        match set.is_empty() {
            true => Scope::Cluster,
            false => Scope::Namespaces(set),
        }
    }

    pub fn manages(&self, namespace: &str) -> bool {
        match self {
            Scope::Cluster => true,
            Scope::Namespaces(set) => set.contains(namespace),
        }
    }

    /// One Api per namespace in scope (one cluster-wide Api otherwise).
    pub fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        self.scoped_apis(client)
            .into_iter()
            .map(|(_, api)| api)
            .collect()
    }

    /// `apis`, each with its namespace (`None` for the cluster-wide one).
    pub fn scoped_apis<K>(&self, client: &Client) -> Vec<(Option<String>, Api<K>)>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Scope::Cluster => vec![(None, Api::all(client.clone()))],
            Scope::Namespaces(set) => set
                .iter()
                .map(|ns| (Some(ns.clone()), Api::namespaced(client.clone(), ns)))
                .collect(),
        }
    }

    /// Why the operator will not act in `namespace` (a condition message).
    pub fn refusal(&self, namespace: &str) -> Option<String> {
        match self {
            Scope::Namespaces(set) if !set.contains(namespace) => Some(format!(
                "this operator runs in namespaced mode and manages only {}; namespace {namespace} has not granted it (a RoleBinding to the chart's <release>-namespace ClusterRole, and the namespace in rbac.namespaces)",
                set.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_is_the_whole_cluster() {
        for list in [vec![], vec![String::new()], vec![" ".to_string()]] {
            let scope = Scope::from_list(&list);
            assert_eq!(scope, Scope::Cluster);
            assert!(scope.manages("anything"));
            assert!(scope.refusal("anything").is_none());
        }
    }

    #[test]
    fn namespaced_mode_manages_only_its_list() {
        let scope = Scope::from_list(&["team".into(), " prod ".into()]);
        for (namespace, managed) in [
            ("team", true),
            ("prod", true),
            ("other", false),
            ("", false),
        ] {
            assert_eq!(scope.manages(namespace), managed, "{namespace}");
            assert_eq!(scope.refusal(namespace).is_none(), managed, "{namespace}");
        }
        assert!(scope
            .refusal("other")
            .unwrap()
            .contains("manages only prod, team"));
    }
}
