//! What the `scan` and `rules` subcommands do.

use std::fs::File;
use std::io::Write;
use std::time::Duration;

use crate::cli::ScanArgs;
use crate::report::{self, markdown_summary, Format, Report};
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

fn write_file(
    path: &std::path::Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let io = |source| Error::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    let mut file = File::create(path).map_err(io)?;
    f(&mut file).map_err(io)
}

/// Writes the report where the arguments say, and the job summary when
/// running in GitHub Actions.
pub fn emit(
    report: &Report,
    format: Format,
    output: Option<&std::path::Path>,
    sarif: Option<&std::path::Path>,
) -> Result<(), Error> {
    match output {
        Some(path) => write_file(path, |w| report::write(report, format, w))?,
        None => {
            let stdout = std::io::stdout();
            match report::write(report, format, &mut stdout.lock()) {
                // `keyguard scan | head`: the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.map_err(|source| Error::Io {
                    what: "writing the report".into(),
                    source,
                })?,
            }
        }
    }
    if let Some(path) = sarif {
        write_file(path, |w| report::write_sarif(report, w))?;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .map_err(|source| Error::Io {
                what: "opening $GITHUB_STEP_SUMMARY".into(),
                source,
            })?;
        file.write_all(markdown_summary(report).as_bytes())
            .map_err(|source| Error::Io {
                what: "writing $GITHUB_STEP_SUMMARY".into(),
                source,
            })?;
    }
    Ok(())
}

pub fn scan(args: ScanArgs) -> anyhow::Result<i32> {
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
