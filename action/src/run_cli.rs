//! What the `scan` and `rules` subcommands do.

use std::io::Write;
use std::time::Duration;

use crate::cli::{MergeArgs, ScanArgs};
use crate::org::{self, report::Mode};
use crate::report::{self, markdown_summary, write_file, Format, Report};
use crate::rules::RuleSet;
use crate::scan::{self, ScanOptions, Target};
use crate::verify::VerifyOptions;
use crate::{exit, Error};

impl ScanArgs {
    pub fn options(&self) -> Result<ScanOptions, Error> {
        let first = self.paths.first().cloned().unwrap_or_else(|| ".".into());
        let single = |what: &str| {
            if self.paths.len() > 1 {
                Err(Error::Usage(format!(
                    "{what} scans one repository, not {} paths",
                    self.paths.len()
                )))
            } else {
                Ok(())
            }
        };
        let target = if let Some(range) = &self.range {
            single("--range")?;
            Target::Range(first, range.clone())
        } else if self.history {
            single("--history")?;
            Target::History(first)
        } else if first.as_os_str() == "-" {
            single("stdin")?;
            Target::Stdin
        } else {
            Target::Tree(self.paths.clone())
        };
        if self.commit_messages && !matches!(target, Target::History(_) | Target::Range(..)) {
            return Err(Error::Usage(
                "--commit-messages needs --history or --range".into(),
            ));
        }
        let mut opts = ScanOptions::new(target);
        opts.no_ignore = self.no_ignore;
        opts.follow_links = self.follow;
        if let Some(t) = self.threads {
            opts.threads = t.max(1);
        }
        opts.ignore_file = self.ignore_file.clone();
        opts.baseline = self.baseline.clone();
        opts.known = self.known.clone();
        opts.unreachable = self.unreachable;
        opts.commit_messages = self.commit_messages;
        opts.allow_new_inline_waivers = !self.no_new_inline_waivers;
        opts.verify = self.verify.then(|| VerifyOptions {
            base_url: self.x_api_base.clone(),
            timeout: Duration::from_secs(10),
            consumer_keys: self.verify_consumer_keys,
        });
        Ok(opts)
    }
}

/// Writes the report where the arguments say, and the job summary when
/// running in GitHub Actions.
pub fn emit(
    report: &Report,
    format: Format,
    output: Option<&std::path::Path>,
    sarif: Option<&std::path::Path>,
) -> Result<(), Error> {
    report::write_out(output, |w| report::write(report, format, w))?;
    if let Some(path) = sarif {
        write_file(path, |w| report::write_sarif(report, w))?;
    }
    report::append_step_summary(&markdown_summary(report))?;
    Ok(())
}

pub fn scan(args: ScanArgs) -> anyhow::Result<i32> {
    if let Some(organisation) = &args.org.github_org {
        return sweep(&args, organisation);
    }
    let report = scan::run(&args.options()?)?;
    if args.verbose {
        for s in &report.skipped {
            eprintln!("keyguard: skipped {s}");
        }
    }
    for w in &report.warnings {
        if args.format != Format::Text && args.format != Format::Github {
            eprintln!("keyguard: warning: {w}");
        }
    }
    emit(
        &report,
        args.format,
        args.output.as_deref(),
        args.sarif_file.as_deref(),
    )?;
    Ok(report.exit_code(!args.no_fail))
}

/// `scan --github-org`: every repository of an organisation.
fn sweep(args: &ScanArgs, organisation: &str) -> anyhow::Result<i32> {
    let opts = args.options()?;
    let sweep_args = org::SweepArgs {
        organisation,
        api: &args.org.github_api_url,
        mode: if args.history {
            Mode::History
        } else {
            Mode::Tree
        },
        shard: args.org.shard.unwrap_or(org::shard::Shard::ALL),
        include_archived: args.org.include_archived,
        include_forks: args.org.include_forks,
        state: args.org.state.as_deref(),
        max_wait: Duration::from_secs(args.org.max_rate_limit_wait),
        jobs: args.org.jobs.unwrap_or(2 * opts.threads).max(1),
        public_only: args.org.public_only,
    };
    let report = org::sweep(&sweep_args, &opts)?;
    let output = (args.output.as_deref(), args.sarif_file.as_deref());
    Ok(org::emit(&report, args.format, output, !args.no_fail)?)
}

/// `merge`: the shards' reports of a sweep as one.
pub fn merge(args: MergeArgs) -> anyhow::Result<i32> {
    let report = org::merge_files(&args.reports)?;
    let output = (args.output.as_deref(), args.sarif_file.as_deref());
    Ok(org::emit(&report, args.format, output, !args.no_fail)?)
}

pub fn rules(keywords: bool) -> anyhow::Result<i32> {
    let set = RuleSet::builtin();
    if keywords {
        for k in set.keywords.iter().chain(&set.markers) {
            println!("{k}");
        }
        return Ok(exit::CLEAN);
    }
    for r in set.rules {
        let credential = r
            .spec
            .credential
            .map_or("(from the variable's name)".to_string(), |c| {
                c.display_name().to_string()
            });
        println!("{:32} {}  [{}]", r.spec.id, r.spec.name, credential);
    }
    Ok(exit::CLEAN)
}

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "keyguard", &mut text);
    print_quietly(&text)
}

pub fn man() -> anyhow::Result<i32> {
    use clap::CommandFactory;
    let mut text = Vec::new();
    clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut text)?;
    print_quietly(&text)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print_quietly(text: &[u8]) -> anyhow::Result<i32> {
    match std::io::stdout().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(exit::CLEAN),
    }
}
