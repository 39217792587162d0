//! Why an environment is not synced, or a stage did not go ahead: a
//! reason and a message a tenant can act on, what happens to the objects
//! already there, and when it is worth trying again.

use crate::conditions::Reason;
use crate::wake::{Wake, WakeUp};

/// What happens to this environment's existing objects on a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// Leave them: the refusal may be temporary (a broken source must not
    /// break running workloads) or the objects are another environment's.
    Keep,
    /// Remove the Role and RoleBinding, keep the Secret (`Retain`).
    RemoveAccess,
    /// Remove every piece this resource owns for the target.
    RemoveAll,
}

/// Why an environment is not synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
    pub teardown: Teardown,
    /// Transient: check again soon rather than at the resync.
    pub retry_soon: bool,
    /// When it is worth trying again (an X API rate limit's reset).
    pub retry_after: Option<std::time::Duration>,
    /// Some writes succeeded before the one that was refused.
    pub wrote: bool,
}

impl Refusal {
    pub fn new(reason: Reason, message: impl Into<String>, teardown: Teardown) -> Refusal {
        Refusal {
            reason,
            message: message.into(),
            teardown,
            retry_soon: false,
            retry_after: None,
            wrote: false,
        }
    }

    /// A refusal for an X API failure: transient ones are retried, a rate
    /// limit only after its reset.
    pub fn x_api(doing: &str, e: &crate::xapi::XApiError) -> Refusal {
        let r = Refusal::new(
            Reason::XApiError,
            format!("{doing} failed: {e}"),
            Teardown::Keep,
        );
        let r = if e.is_transient() { r.soon() } else { r };
        Refusal {
            retry_after: e.retry_after(),
            ..r
        }
    }

    /// When it is worth looking again.
    pub fn wake(&self) -> WakeUp {
        let mut w = WakeUp::default();
        if self.retry_soon {
            w.add(Wake::Soon);
        }
        w.add_opt(self.retry_after.map(Wake::RateLimited));
        w
    }

    pub fn soon(mut self) -> Refusal {
        self.retry_soon = true;
        self
    }

    /// A read from the apiserver that failed: not synced, tried again soon.
    pub fn read_failed(e: &kube::Error) -> Refusal {
        Refusal::kube(Reason::NotSynced, "reading", e)
    }

    /// A write to the apiserver that failed, `doing` naming the object.
    pub fn write_failed(doing: &str, e: &kube::Error) -> Refusal {
        Refusal::kube(Reason::WriteFailed, doing, e)
    }

    /// A Kubernetes API call that failed; the apiserver's message is kept
    /// short (it names fields, never Secret values).
    fn kube(reason: Reason, doing: &str, e: &kube::Error) -> Refusal {
        let detail = match e {
            kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
            other => other.to_string(),
        };
        // Server text can echo what was sent: scrub it like X's.
        let detail = keyguard_credentials::scrub_server_text(&detail, 400);
        Refusal::new(reason, format!("{doing} failed: {detail}"), Teardown::Keep).soon()
    }
}
