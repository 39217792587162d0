//! Command-line interface of `keyguard`.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "keyguard",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KEYGUARD_REVISION"), ")"),
    about = "Finds X (Twitter) API credentials in code, git history, pull requests and stdin.",
    after_help = "Exit codes: 0 nothing found, 1 credentials found, 2 the scan could not run."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a working tree, a file, git history, a commit range or stdin.
    Scan(Box<ScanArgs>),
    /// List the detection rules.
    Rules {
        /// Print the prefilter keywords instead, one a line (for comparing
        /// with other tools on the same search).
        #[arg(long)]
        keywords: bool,
    },
    /// Run as a GitHub Action step (reads INPUT_* and GITHUB_* variables).
    Action,
    /// Merge the JSON reports of an organisation sweep's shards into one;
    /// fails (exit 2) when a shard is missing.
    Merge(MergeArgs),
    /// Print a shell completion script (e.g. `keyguard completions bash >
    /// /etc/bash_completion.d/keyguard`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `keyguard man > keyguard.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// What to scan: directories or files (as pre-commit passes them), or
    /// `-` for stdin. With --history or --range, the repository.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Scan every unique blob of every ref, once each.
    #[arg(long, conflicts_with = "range", env = "KEYGUARD_HISTORY", value_parser = BoolishValueParser::new())]
    pub history: bool,

    /// With --history: also blobs no ref or reflog reaches any more
    /// (dangling after a reset or an amend, until git collects them).
    #[arg(long, requires = "history", env = "KEYGUARD_UNREACHABLE", value_parser = BoolishValueParser::new())]
    pub unreachable: bool,

    /// With --history or --range: also the commit messages (of every ref
    /// and reflog entry, or of the range's commits).
    #[arg(long, env = "KEYGUARD_COMMIT_MESSAGES", value_parser = BoolishValueParser::new())]
    pub commit_messages: bool,

    /// Scan what the commits BASE..HEAD add (a pull request or a push).
    #[arg(long, value_name = "BASE..HEAD", env = "KEYGUARD_RANGE")]
    pub range: Option<String>,

    /// Also scan what .gitignore and .keyguardignore would skip (audits).
    #[arg(long, env = "KEYGUARD_NO_IGNORE", value_parser = BoolishValueParser::new())]
    pub no_ignore: bool,

    /// Follow symbolic links (loops are detected and reported).
    #[arg(long, env = "KEYGUARD_FOLLOW", value_parser = BoolishValueParser::new())]
    pub follow: bool,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "text", env = "KEYGUARD_FORMAT")]
    pub format: Format,

    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE", env = "KEYGUARD_OUTPUT")]
    pub output: Option<PathBuf>,

    /// Also write a SARIF 2.1.0 report to FILE.
    #[arg(long, value_name = "FILE", env = "KEYGUARD_SARIF_FILE")]
    pub sarif_file: Option<PathBuf>,

    /// Ignore file with paths (gitignore syntax) and fingerprints
    /// [default: .keyguardignore in the scanned root].
    #[arg(long, value_name = "FILE", env = "KEYGUARD_IGNORE_FILE")]
    pub ignore_file: Option<PathBuf>,

    /// A previous JSON report: its findings do not fail this scan.
    #[arg(long, value_name = "FILE", env = "KEYGUARD_BASELINE")]
    pub baseline: Option<PathBuf>,

    /// Fingerprints of live credentials (a list of `sha256:…`, or the JSON
    /// of `kubectl get twcred -A -o json`): every occurrence of those exact
    /// values is reported, with whose they are.
    #[arg(long, value_name = "FILE", env = "KEYGUARD_KNOWN")]
    pub known: Option<PathBuf>,

    /// Ask the X API whether each finding is live (read-only calls).
    #[arg(long, env = "KEYGUARD_VERIFY", value_parser = BoolishValueParser::new())]
    pub verify: bool,

    /// With --verify, also check API key and secret pairs. X can only do
    /// that at its token endpoint, which creates the app's bearer token if
    /// it has none (a write); without this flag such pairs stay `unknown`.
    #[arg(long, env = "KEYGUARD_VERIFY_CONSUMER_KEYS", value_parser = BoolishValueParser::new())]
    pub verify_consumer_keys: bool,

    /// X API base URL for --verify: https:// only (http:// is accepted for
    /// a loopback address, an emulator); redirects are never followed.
    #[arg(long, default_value = "https://api.x.com", env = "KEYGUARD_X_API_BASE")]
    pub x_api_base: String,

    /// Worker threads [default: number of CPUs].
    #[arg(long, env = "KEYGUARD_THREADS")]
    pub threads: Option<usize>,

    /// With --range: report credentials that an inline `keyguard:allow`
    /// added by the same change would waive (listed either way).
    #[arg(long, env = "KEYGUARD_NO_NEW_INLINE_WAIVERS", value_parser = BoolishValueParser::new())]
    pub no_new_inline_waivers: bool,

    /// Also name every input skipped (binary), on stderr.
    #[arg(long, short, env = "KEYGUARD_VERBOSE", value_parser = BoolishValueParser::new())]
    pub verbose: bool,

    /// Exit 0 even when credentials are found.
    #[arg(long, env = "KEYGUARD_NO_FAIL", value_parser = BoolishValueParser::new())]
    pub no_fail: bool,

    #[command(flatten)]
    pub org: OrgArgs,
}

/// The organisation sweep's options.
#[derive(Debug, Args)]
#[command(next_help_heading = "Organisation sweep")]
pub struct OrgArgs {
    /// Scan every repository of a GitHub organisation, each in a fresh
    /// clone (its default branch; with --history, every ref). The token
    /// comes from GITHUB_TOKEN.
    #[arg(long, value_name = "ORG", conflicts_with_all = ["range", "baseline", "paths"])]
    pub github_org: Option<String>,

    /// Also scan archived repositories.
    #[arg(long, requires = "github_org")]
    pub include_archived: bool,

    /// Also scan forks.
    #[arg(long, requires = "github_org")]
    pub include_forks: bool,

    /// Sweep without GITHUB_TOKEN: GitHub then lists public repositories
    /// only (without this flag a missing token is an error).
    #[arg(long, requires = "github_org")]
    pub public_only: bool,

    /// Scan only shard INDEX of COUNT (1-based), e.g. a matrix job's.
    #[arg(long, value_name = "INDEX/COUNT", requires = "github_org")]
    pub shard: Option<crate::org::shard::Shard>,

    /// Resume from FILE and record each repository's row in it; a rerun
    /// scans only what failed or has had a push since.
    #[arg(long, value_name = "FILE", requires = "github_org")]
    pub state: Option<PathBuf>,

    /// GitHub's REST API (GitHub Enterprise: https://HOST/api/v3).
    #[arg(
        long,
        value_name = "URL",
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,

    /// Longest wait a rate limit may ask for before the sweep stops.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 900,
        requires = "github_org"
    )]
    pub max_rate_limit_wait: u64,

    /// Repositories cloned and scanned at once [default: twice the CPUs].
    #[arg(long, requires = "github_org")]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' reports (`keyguard scan --github-org … --format json`).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write a SARIF 2.1.0 report to FILE.
    #[arg(long, value_name = "FILE")]
    pub sarif_file: Option<PathBuf>,

    /// Exit 0 even when credentials are found.
    #[arg(long)]
    pub no_fail: bool,
}
