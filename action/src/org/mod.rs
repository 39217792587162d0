//! The organisation sweep: `keyguard scan --github-org ORG` lists an
//! organisation's repositories (`listing`, within GitHub's rate limits),
//! keeps its shard of them (`shard`), scans each in a fresh clone
//! (`sweep`), and reports one row per repository (`report`). A state file
//! (`state`) lets a stopped sweep resume; `keyguard merge` joins the
//! shards' reports of a matrix into one.

pub mod listing;
pub mod rate_limit;
pub mod report;
pub mod shard;
pub mod state;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::time::Duration;

use listing::{Listing, Repository};
use report::{Mode, SweepReport};
use shard::Shard;

use crate::report::{append_step_summary, write_file, write_out, Format};
use crate::scan::ScanOptions;
use crate::Error;

/// What a sweep is asked to do, beyond each scan's options.
pub struct SweepArgs<'a> {
    pub organisation: &'a str,
    pub api: &'a str,
    pub mode: Mode,
    pub shard: Shard,
    pub include_archived: bool,
    pub include_forks: bool,
    pub state: Option<&'a Path>,
    pub max_wait: Duration,
    pub jobs: usize,
    /// Sweep without a token: only public repositories are listed.
    pub public_only: bool,
}

/// Repositories a policy leaves out, counted for the report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Left {
    pub archived: usize,
    pub forks: usize,
    pub disabled: usize,
}

/// Pure: this shard's repositories the sweep scans, and what it leaves
/// out: archived ones and forks unless asked for, disabled ones always
/// (GitHub refuses to serve them).
pub fn select(repos: Vec<Repository>, args: &SweepArgs<'_>) -> (Vec<Repository>, Left) {
    let mut left = Left::default();
    let kept = repos
        .into_iter()
        .filter(|r| args.shard.contains(&r.full_name))
        .filter(|r| {
            let why = if r.disabled {
                &mut left.disabled
            } else if r.archived && !args.include_archived {
                &mut left.archived
            } else if r.fork && !args.include_forks {
                &mut left.forks
            } else {
                return true;
            };
            *why += 1;
            false
        })
        .collect();
    (kept, left)
}

/// Pure: whether `name` can be a GitHub organisation (letters, digits and
/// hyphens, at most 39): it goes into the listing's URL path as it is.
pub fn is_organisation_name(name: &str) -> bool {
    (1..=39).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Runs a sweep; the report holds one row per repository of the shard.
pub fn sweep(args: &SweepArgs<'_>, scan: &ScanOptions) -> Result<SweepReport, Error> {
    if !is_organisation_name(args.organisation) {
        return Err(Error::Usage(format!(
            "--github-org {:?} is no GitHub organisation name (letters, digits and hyphens)",
            args.organisation
        )));
    }
    let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty());
    if token.is_none() && !args.public_only {
        // Anonymous, GitHub lists public repositories only: a sweep of
        // them must not read as a sweep of the organisation.
        return Err(Error::Usage(
            "GITHUB_TOKEN is not set: without it GitHub lists only public repositories. Set a token that can read the organisation's repositories (metadata and contents: read), or pass --public-only".into(),
        ));
    }
    let listing = Listing {
        api: args.api,
        token: token.as_deref(),
        organisation: args.organisation,
        max_wait: args.max_wait,
    };
    let listed = listing.list()?;
    let count = listed.len();
    let (repos, left) = select(listed, args);
    let done = match args.state {
        Some(path) => state::load(path, args.organisation, args.mode, &settings(scan))?,
        None => state::Done::new(),
    };
    let (mut rows, to_scan) = state::plan(repos, &done);
    eprintln!(
        "keyguard: {}: {count} repositories listed; shard {}: {} from the state file, {} to scan; left out: {} archived (--include-archived), {} forks (--include-forks), {} disabled",
        args.organisation, args.shard, rows.len(), to_scan.len(), left.archived, left.forks, left.disabled
    );
    let writer = args
        .state
        .map(|path| state::Writer::open(path, args.organisation, args.mode, &settings(scan)))
        .transpose()?;
    let work = WorkDir::create()?;
    let detector = crate::scan::detector_for(scan)?;
    let sweeper = sweep::Sweeper {
        mode: args.mode,
        scan,
        detector: &detector,
        api: args.api,
        token: token.as_deref(),
        jobs: args.jobs,
        work_dir: work.0.clone(),
        state: writer.as_ref(),
    };
    rows.extend(sweeper.sweep(&to_scan));
    rows.sort_by(|a, b| a.repository.cmp(&b.repository));
    Ok(SweepReport {
        organisation: args.organisation.to_string(),
        mode: args.mode,
        shard_count: args.shard.count,
        shards: vec![args.shard.index],
        repositories: rows,
    })
}

/// What a state file's rows were scanned with: rows of another version
/// or other options are never reused.
fn settings(scan: &ScanOptions) -> String {
    format!(
        "keyguard {}; no-ignore {}; unreachable {}; commit-messages {}; ignore-file {:?}; known {:?}",
        env!("CARGO_PKG_VERSION"),
        scan.no_ignore,
        scan.unreachable,
        scan.commit_messages,
        scan.ignore_file,
        scan.known
    )
}

/// The clones' parent directory: a fresh one only this user can read
/// (private repositories are cloned into it), removed with its contents.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<WorkDir, Error> {
        let io = |source| Error::Io {
            what: "creating the sweep's work directory".into(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("keyguard-sweep-")
            .tempdir()
            .map_err(io)?
            .keep();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads shards' JSON reports and merges them.
pub fn merge_files(files: &[PathBuf]) -> Result<SweepReport, Error> {
    let reports = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                what: format!("reading {}", path.display()),
                source,
            })?;
            serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{} is no sweep report: {e}", path.display())))
        })
        .collect::<Result<Vec<SweepReport>, Error>>()?;
    report::merge(reports).map_err(Error::Usage)
}

/// Writes a sweep's report where the arguments say (the report, then a
/// SARIF file), and the job summary; the exit code.
pub fn emit(
    report: &SweepReport,
    format: Format,
    (output, sarif): (Option<&Path>, Option<&Path>),
    fail: bool,
) -> Result<i32, Error> {
    write_out(output, |w| match format {
        Format::Json => report::write_json(report, w),
        Format::Sarif => report::write_sarif(report, w),
        Format::Text | Format::Github => report::write_text(report, w),
    })?;
    if let Some(path) = sarif {
        write_file(path, |w| report::write_sarif(report, w))?;
    }
    append_step_summary(&report::markdown_summary(report))?;
    Ok(report.exit_code(fail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, archived: bool, fork: bool, disabled: bool) -> Repository {
        Repository {
            full_name: name.into(),
            archived,
            fork,
            disabled,
            pushed_at: None,
            clone_url: String::new(),
            html_url: String::new(),
        }
    }

    fn args(include_archived: bool, include_forks: bool, shard: Shard) -> SweepArgs<'static> {
        SweepArgs {
            organisation: "acme",
            api: "https://api.github.com",
            mode: Mode::Tree,
            shard,
            include_archived,
            include_forks,
            state: None,
            max_wait: Duration::from_secs(1),
            jobs: 1,
            public_only: false,
        }
    }

    #[test]
    fn only_an_organisation_name_goes_into_the_listing_s_url() {
        for (name, ok) in [
            ("acme", true),
            ("acme-labs-2", true),
            ("", false),
            ("acme/x", false),
            ("acme?per_page=1", false),
            ("../users", false),
            (&"a".repeat(40), false),
        ] {
            assert_eq!(is_organisation_name(name), ok, "{name}");
        }
    }

    #[test]
    fn archived_repositories_and_forks_are_left_out_unless_asked_for() {
        let repos = || {
            vec![
                repo("acme/live", false, false, false),
                repo("acme/old", true, false, false),
                repo("acme/fork", false, true, false),
                repo("acme/off", false, false, true),
            ]
        };
        let names = |(kept, _): &(Vec<Repository>, Left)| {
            kept.iter().map(|r| r.full_name.clone()).collect::<Vec<_>>()
        };
        let plain = select(repos(), &args(false, false, Shard::ALL));
        assert_eq!(names(&plain), ["acme/live"]);
        assert_eq!(
            plain.1,
            Left {
                archived: 1,
                forks: 1,
                disabled: 1
            }
        );
        let all = select(repos(), &args(true, true, Shard::ALL));
        assert_eq!(names(&all), ["acme/live", "acme/old", "acme/fork"]);
        let shards: usize = (1..=3)
            .map(|index| {
                select(repos(), &args(true, true, Shard { index, count: 3 }))
                    .0
                    .len()
            })
            .sum();
        assert_eq!(shards, 3);
    }
}
