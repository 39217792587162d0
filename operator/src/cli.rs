//! Command-line interface of `keyguard-operator`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keyguard-operator",
    version,
    about = "Keeps X (Twitter) API credentials synced, verified and rotated in Kubernetes."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the TwitterCredential CustomResourceDefinition as YAML.
    Crd,
}
