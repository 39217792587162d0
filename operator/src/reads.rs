//! What one reconcile already read of an environment, handed from stage to
//! stage so nothing is read twice: rotation reads the source and the state
//! record first, and sync works from exactly those reads.

use k8s_openapi::api::core::v1::Secret;

/// What this reconcile already read (the rotation step reads the source
/// and the state record first), so it is not read again: `None` is not
/// read yet, `Some(None)` read and absent.
#[derive(Debug, Clone, Default)]
pub struct AlreadyRead {
    pub source: Option<Option<Secret>>,
    pub state: Option<Option<Secret>>,
}
