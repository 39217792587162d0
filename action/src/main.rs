use clap::Parser;
use keyguard_scan::cli::{Cli, Command};
use keyguard_scan::{exit, github, run_cli};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => run_cli::scan(*args),
        Command::Rules { keywords } => run_cli::rules(keywords),
        Command::Action => github::action::run_from_env(),
        Command::Merge(args) => run_cli::merge(args),
        Command::Completions { shell } => run_cli::completions(shell),
        Command::Man => run_cli::man(),
    };
    std::process::exit(match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("keyguard: error: {err:#}");
            exit::ERROR
        }
    });
}
