//! One scan from options to report: pick the source, apply waivers, verify.

use std::path::{Path, PathBuf};

use crate::detect::Detector;
use crate::report::{Example, Report};
use crate::rules::RuleSet;
use crate::sources::{history, range, stdin, tree, SourceOutput};
use crate::verify::{verify_findings, VerifyOptions};
use crate::waivers::{AddedWaiver, Baseline, IgnoreFile, IGNORE_FILE_NAME};
use crate::Error;

/// What to scan.
#[derive(Debug, Clone)]
pub enum Target {
    /// Working trees or single files.
    Tree(Vec<PathBuf>),
    /// Every blob of every ref of the repository at the path.
    History(PathBuf),
    /// What `BASE..HEAD` adds, in the repository at the path.
    Range(PathBuf, String),
    /// Standard input.
    Stdin,
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub target: Target,
    pub no_ignore: bool,
    pub follow_links: bool,
    pub threads: usize,
    pub ignore_file: Option<PathBuf>,
    pub baseline: Option<PathBuf>,
    pub verify: Option<VerifyOptions>,
    /// Range mode: an inline `keyguard:allow` the change adds waives its
    /// finding (listed for reviewers); `false` reports the finding anyway.
    pub allow_new_inline_waivers: bool,
    /// Shown before tree paths instead of the path as given (the Action
    /// makes paths relative to the repository root).
    pub display_prefix: Option<String>,
    /// Fingerprints of live credentials to find exactly (`--known`).
    pub known: Option<PathBuf>,
    /// History mode: also blobs no ref reaches any more.
    pub unreachable: bool,
    /// History mode: also commit messages.
    pub commit_messages: bool,
}

impl ScanOptions {
    /// Where this scan's waivers come from.
    pub fn waiver_files(&self) -> crate::waivers::WaiverFiles<'_> {
        crate::waivers::WaiverFiles {
            no_ignore: self.no_ignore,
            ignore_file: self.ignore_file.as_deref(),
            baseline: self.baseline.as_deref(),
        }
    }

    pub fn new(target: Target) -> Self {
        ScanOptions {
            target,
            no_ignore: false,
            follow_links: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            ignore_file: None,
            baseline: None,
            verify: None,
            allow_new_inline_waivers: true,
            display_prefix: None,
            known: None,
            unreachable: false,
            commit_messages: false,
        }
    }
}

/// A scan: detector → source → waivers → report → verification.
pub fn run(opts: &ScanOptions) -> Result<Report, Error> {
    run_with(opts, &detector_for(opts)?)
}

/// The detector a scan with `opts` uses (built rules and `--known`); many
/// scans may share one (an organisation sweep builds it once).
pub fn detector_for(opts: &ScanOptions) -> Result<Detector, Error> {
    Ok(match &opts.known {
        Some(path) => Detector::builtin().with_known(crate::known::Known::load(path)?),
        None => Detector::builtin(),
    })
}

/// A scan with a detector built already.
pub fn run_with(opts: &ScanOptions, detector: &Detector) -> Result<Report, Error> {
    let scanned = scan_source(opts, detector)?;
    let mut report = waive(opts, &detector.rules, scanned)?;
    if let Some(v) = &opts.verify {
        verify_findings(&mut report.findings, v);
    }
    Ok(report)
}

/// What a source gave, and how to show and waive it.
struct Scanned {
    /// Where the ignore file is looked for.
    root: Option<PathBuf>,
    output: SourceOutput,
    /// What was scanned, for the report.
    target: String,
    /// A prefix for every path once waivers have matched them.
    later_prefix: Option<String>,
}

fn scan_source(opts: &ScanOptions, detector: &Detector) -> Result<Scanned, Error> {
    let scanned = |root: Option<&Path>, output, target| Scanned {
        root: root.map(Path::to_path_buf),
        output,
        target,
        later_prefix: None,
    };
    Ok(match &opts.target {
        Target::Tree(paths) => scan_trees(opts, paths, detector)?,
        Target::History(path) => {
            let history_opts = history::HistoryOptions {
                threads: opts.threads,
                unreachable: opts.unreachable,
                commit_messages: opts.commit_messages,
            };
            let output = history::scan_history(path, detector, history_opts)?;
            scanned(Some(path), output, format!("history of {}", path.display()))
        }
        Target::Range(path, r) => {
            let output = range::scan_range(path, r, opts.commit_messages, opts.threads, detector)?;
            scanned(Some(path), output, format!("range {r}"))
        }
        Target::Stdin => {
            let output = stdin::scan_reader(std::io::stdin().lock(), "<stdin>", detector);
            scanned(None, output, "stdin".to_string())
        }
    })
}

/// One path: its findings are matched against its ignore file first,
/// then shown with the path's prefix. Several: shown (and matched
/// against ./.keyguardignore) with each one's prefix.
fn scan_trees(
    opts: &ScanOptions,
    paths: &[PathBuf],
    detector: &Detector,
) -> Result<Scanned, Error> {
    let mut output = SourceOutput::default();
    let mut later_prefix = None;
    let tree_opts = tree::TreeOptions {
        no_ignore: opts.no_ignore,
        follow_links: opts.follow_links,
        threads: opts.threads,
    };
    for path in paths {
        if !path.exists() {
            return Err(Error::Usage(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
        let mut scanned = tree::scan_tree(path, detector, tree_opts);
        let prefix = opts.display_prefix.clone().or_else(|| display_prefix(path));
        match paths.len() {
            1 => later_prefix = prefix,
            _ => prefix_paths(&mut scanned.findings, prefix.as_deref()),
        }
        output.absorb(scanned);
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let root = match paths {
        [one] => one.clone(),
        _ => PathBuf::from("."),
    };
    Ok(Scanned {
        root: Some(root),
        output,
        target: format!("tree {}", names.join(" ")),
        later_prefix,
    })
}

/// The report: X's published examples are listed apart, never failing;
/// findings the ignore file or baseline waive are counted, not listed;
/// waivers the change adds are listed (range mode).
fn waive(opts: &ScanOptions, rules: &RuleSet, scanned: Scanned) -> Result<Report, Error> {
    let SourceOutput {
        mut findings,
        warnings,
        stats,
        added_inline_waivers,
        skipped,
        incomplete,
    } = scanned.output;
    let (ignore, baseline, mut added_waivers) = match &opts.target {
        Target::Range(repo, range) => crate::base_waivers::load(repo, range, &opts.waiver_files())?,
        _ => (
            ignore_file(opts, &scanned.root)?,
            baseline(opts)?,
            Vec::new(),
        ),
    };
    if opts.allow_new_inline_waivers {
        added_waivers.extend(added_inline_waivers.iter().map(|f| AddedWaiver {
            path: f.path.clone(),
            line: f.line,
            what: format!(
                "inline keyguard:allow waives a {} ({})",
                f.credential.display_name(),
                f.redacted()
            ),
        }));
    } else {
        findings.extend(added_inline_waivers);
    }
    let mut report = Report {
        target: scanned.target,
        warnings,
        incomplete,
        stats,
        added_waivers,
        skipped,
        ..Default::default()
    };
    for f in findings {
        classify(&mut report, f, rules, &ignore, baseline.as_ref());
    }
    prefix_paths(&mut report.findings, scanned.later_prefix.as_deref());
    for e in &mut report.examples {
        prefix_paths(
            std::slice::from_mut(&mut e.finding),
            scanned.later_prefix.as_deref(),
        );
    }
    report
        .findings
        .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    Ok(report)
}

/// Puts one finding where it belongs: X's published examples apart,
/// waived ones counted, the rest listed.
fn classify(
    report: &mut Report,
    f: crate::finding::Finding,
    rules: &RuleSet,
    ignore: &IgnoreFile,
    baseline: Option<&Baseline>,
) {
    if let Some(example) = rules.published_example(f.fingerprint().as_str()) {
        report.examples.push(Example {
            published_at: example.published_at.clone(),
            finding: f,
        });
    } else if ignore.ignores(&f) {
        report.ignored += 1;
    } else if baseline.is_some_and(|b| b.contains(&f)) {
        report.baselined += 1;
    } else {
        report.findings.push(f);
    }
}

/// Pure: what goes before a directory's findings so they read as paths
/// from where the scan was asked (`src/bot.py` for `keyguard scan src`),
/// as grep and ripgrep print them. A file's findings carry its path.
pub fn display_prefix(path: &std::path::Path) -> Option<String> {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.trim_end_matches('/');
    (path.is_dir() && !text.is_empty() && text != ".").then(|| format!("{text}/"))
}

fn prefix_paths(findings: &mut [crate::finding::Finding], prefix: Option<&str>) {
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        for f in findings {
            f.path = format!("{prefix}{}", f.path);
        }
    }
}

/// The ignore file of a tree or history scan: as given, or at the root.
fn ignore_file(opts: &ScanOptions, root: &Option<PathBuf>) -> Result<IgnoreFile, Error> {
    Ok(match (&opts.ignore_file, root) {
        (Some(file), _) => {
            IgnoreFile::load(root.as_deref().unwrap_or(std::path::Path::new(".")), file)?
        }
        (None, Some(root)) if !opts.no_ignore && root.is_dir() => {
            IgnoreFile::load(root, &root.join(IGNORE_FILE_NAME))?
        }
        _ => IgnoreFile::default(),
    })
}

fn baseline(opts: &ScanOptions) -> Result<Option<Baseline>, Error> {
    opts.baseline.as_deref().map(Baseline::load).transpose()
}
