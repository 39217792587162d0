//! What one reconcile already read of an environment, handed from stage to
//! stage so nothing is read twice: rotation reads the source and the state
//! record first, and sync works from exactly those reads. Environments
//! that share a source Secret read it once per reconcile.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

/// What this reconcile already read (the rotation step reads the source
/// and the state record first), so it is not read again: `None` is not
/// read yet, `Some(None)` read and absent. No `Debug`: it holds Secrets
/// whole, values and all.
#[derive(Clone, Default)]
pub struct AlreadyRead {
    pub source: Option<Option<Secret>>,
    pub state: Option<Option<Secret>>,
}

/// Source Secrets this reconcile read, by name: environments that share a
/// source read it once per reconcile, and all of them project the same
/// version of it. The operator never writes a source, so no stage can make
/// a read stale within the reconcile. No `Debug`, as above.
#[derive(Default)]
pub struct SourceReads(BTreeMap<String, Option<Secret>>);

impl SourceReads {
    /// The source Secret `name`, read from `api` the first time only.
    pub async fn get(
        &mut self,
        api: &Api<Secret>,
        name: &str,
    ) -> Result<Option<Secret>, kube::Error> {
        if let Some(read) = self.0.get(name) {
            return Ok(read.clone());
        }
        let read = api.get_opt(name).await?;
        self.0.insert(name.to_string(), read.clone());
        Ok(read)
    }
}
