//! The three kinds of object the operator writes for a target, as a type:
//! a claim, a deletion and a log line name the kind the same way.

use std::fmt;

/// A kind of object the operator creates, owns and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Secret,
    Role,
    RoleBinding,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [
        ObjectKind::Secret,
        ObjectKind::Role,
        ObjectKind::RoleBinding,
    ];

    /// The Kubernetes kind, as claims are computed over it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Secret => "Secret",
            ObjectKind::Role => "Role",
            ObjectKind::RoleBinding => "RoleBinding",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims already issued hash these exact strings: renaming one would
    /// orphan every object of that kind.
    #[test]
    fn kinds_are_named_as_kubernetes_names_them() {
        let names: Vec<&str> = ObjectKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["Secret", "Role", "RoleBinding"]);
        assert_eq!(ObjectKind::RoleBinding.to_string(), "RoleBinding");
    }
}
