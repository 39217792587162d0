use clap::Parser;
use keyguard_operator::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", keyguard_operator::resource::crd_yaml()?);
            Ok(())
        }
    }
}
