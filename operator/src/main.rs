use clap::Parser;
use keyguard_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", keyguard_operator::resource::crd_yaml()?),
        Command::CrdReference => print!("{}", keyguard_operator::crd_reference::markdown()?),
        Command::Run(args) => keyguard_operator::run(*args).await?,
    }
    Ok(())
}
