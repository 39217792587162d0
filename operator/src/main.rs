use clap::Parser;
use keyguard_operator::cli::{Cli, Command};

/// The images' allocator (feature `jemalloc`, see operator/Cargo.toml):
/// glibc's keeps what a burst freed, so resident memory stays at the
/// burst's peak; jemalloc, configured at build time by
/// scripts/static-binaries.sh, gives it back within seconds.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", keyguard_operator::resource::crd_yaml()?),
        Command::CrdReference => print!("{}", keyguard_operator::crd_reference::markdown()?),
        Command::Run(args) => keyguard_operator::run(*args).await?,
    }
    Ok(())
}
