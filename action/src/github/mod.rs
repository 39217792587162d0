//! Running as a GitHub Action: inputs and outputs the way a runner passes
//! them, and the pull request comment.

pub mod action;
pub mod comment;
