//! Running as a GitHub Action: inputs and outputs the way a runner passes
//! them, and the pull request comment.

pub mod action;
pub mod comment;

/// octocrab's Display says only "GitHub"; people need the status and message.
pub fn describe(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("{} {}", source.status_code, source.message)
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        }
    }
}
