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
            retry_after: operator_wait(e),
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
        let detail = scrub_keeping_record_names(&detail);
        Refusal::new(reason, format!("{doing} failed: {detail}"), Teardown::Keep).soon()
    }
}

/// The operator's own record Secrets (`keyguard-state-<16 hex>`,
/// `keyguard-retired-<16 hex>`): names a person needs to read in a message.
const RECORD_PREFIXES: [&str; 2] = ["keyguard-state-", "keyguard-retired-"];

/// Pure: apiserver text scrubbed like X's (it can echo what was sent),
/// except the operator's own record names, which look like tokens (16 hex
/// digits) but are what a person must find: they are set aside, the rest
/// scrubbed, and they are put back.
pub fn scrub_keeping_record_names(text: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, prefix)) = RECORD_PREFIXES
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min()
    {
        let digits = &rest[at + prefix.len()..];
        let hex = digits.chars().take_while(char::is_ascii_hexdigit).count();
        masked.push_str(&rest[..at]);
        if hex == 16 {
            masked.push_str(&format!("\u{a7}{}\u{a7}", kept.len()));
            kept.push(rest[at..at + prefix.len() + 16].to_string());
        } else {
            masked.push_str(prefix);
        }
        rest = &rest[at + prefix.len() + if hex == 16 { 16 } else { 0 }..];
    }
    masked.push_str(rest);
    let mut scrubbed = keyguard_credentials::scrub_server_text(&masked, 400);
    for (i, name) in kept.iter().enumerate() {
        scrubbed = scrubbed.replace(&format!("\u{a7}{i}\u{a7}"), name);
    }
    scrubbed
}

/// How long the operator waits out an X rate limit: until its reset, but
/// never past X's 15-minute window. None of the operator's endpoints has
/// X's 24-hour (Free) windows, so a longer reset is a stray header or a
/// hostile answer, and waiting it out could leave a rotation half done or a
/// user token expired; asking again after 15 minutes costs one call.
pub fn operator_wait(e: &crate::xapi::XApiError) -> Option<std::time::Duration> {
    e.retry_after()
        .map(|d| d.min(std::time::Duration::from_secs(15 * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_text_is_scrubbed_but_the_operators_record_names_stay() {
        let token = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F"; // keyguard:allow (a made-up token the scrubber must hide)
        let cases = [
            (
                "Secret \"keyguard-state-0a1b2c3d4e5f6a7b\" is invalid",
                "Secret \"keyguard-state-0a1b2c3d4e5f6a7b\" is invalid",
            ),
            (
                "secrets \"keyguard-retired-ffffffffffffffff\" already exists",
                "secrets \"keyguard-retired-ffffffffffffffff\" already exists",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(scrub_keeping_record_names(text), want, "{text}");
        }
        let echoed =
            format!("Secret \"keyguard-state-0a1b2c3d4e5f6a7b\": data.bearerToken: {token}");
        let out = scrub_keeping_record_names(&echoed);
        assert!(out.contains("keyguard-state-0a1b2c3d4e5f6a7b"), "{out}");
        assert!(
            !out.contains("ULvsea4JtiGRiSDSJSI"),
            "a value is still scrubbed: {out}"
        );
        let lookalike = "keyguard-state-AAAAxxxxxxxxxxxxxxxxxxxxZZ9";
        assert!(!scrub_keeping_record_names(lookalike).contains("AAAAxxxxxxxx"));
    }

    #[test]
    fn a_rate_limit_is_waited_out_for_at_most_fifteen_minutes() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let limited = |reset| crate::xapi::XApiError::RateLimited {
            endpoint: "GET /x",
            reset: Some(reset),
        };
        let secs = |reset| operator_wait(&limited(reset)).map(|d| d.as_secs());
        assert!(matches!(secs(now + 120), Some(119..=120)));
        assert_eq!(secs(now + 20 * 3600), Some(900), "a day-long reset");
    }
}
