//! The report of an organisation sweep: one row per repository (clean,
//! found, incomplete or failed) with its findings, redacted as in every
//! report. Shards' reports merge into one, and a merge that lacks a shard
//! fails: a repository nobody scanned is never a clean result.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What each repository's scan read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The default branch's files.
    Tree,
    /// Every blob of every ref.
    History,
}

/// How one repository came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Clean,
    Found,
    /// A limit kept part of it unread.
    Incomplete,
    /// Not scanned: the clone or the scan could not run.
    Failed,
}

/// One repository's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub repository: String,
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<String>,
    /// The commit scanned (tree mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub status: Status,
    /// The scan's finding records, each with a `message`.
    #[serde(default)]
    pub findings: Vec<Value>,
    #[serde(default)]
    pub ignored: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The repository's SARIF run, for rows that are not clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sarif_run: Option<Value>,
}

impl Row {
    /// A repository that could not be scanned.
    pub fn failed(repository: &str, url: &str, pushed_at: Option<String>, error: String) -> Row {
        let mut run =
            crate::report::failed_sarif(&format!("{repository}: {error}"))["runs"][0].take();
        provenance(&mut run, url, None);
        Row {
            repository: repository.to_string(),
            url: url.to_string(),
            pushed_at,
            revision: None,
            status: Status::Failed,
            findings: Vec::new(),
            ignored: 0,
            warnings: Vec::new(),
            incomplete: Vec::new(),
            error: Some(error),
            sarif_run: Some(run),
        }
    }
}

/// Names the repository (and commit) a SARIF run is about.
pub fn provenance(run: &mut Value, url: &str, revision: Option<&str>) {
    if url.is_empty() {
        return;
    }
    let mut details = json!({"repositoryUri": url});
    if let Some(revision) = revision {
        details["revisionId"] = json!(revision);
    }
    run["versionControlProvenance"] = json!([details]);
}

/// A sweep's report, or the merge of its shards' reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub organisation: String,
    pub mode: Mode,
    pub shard_count: u32,
    /// The shards (1-based) this report covers.
    pub shards: Vec<u32>,
    pub repositories: Vec<Row>,
}

/// Counts for the headline.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub repositories: usize,
    pub clean: usize,
    pub with_findings: usize,
    pub incomplete: usize,
    pub failed: usize,
    pub findings: usize,
}

impl SweepReport {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            repositories: self.repositories.len(),
            ..Summary::default()
        };
        for row in &self.repositories {
            s.findings += row.findings.len();
            match row.status {
                Status::Clean => s.clean += 1,
                Status::Found => s.with_findings += 1,
                Status::Incomplete => s.incomplete += 1,
                Status::Failed => s.failed += 1,
            }
        }
        s
    }

    /// Pure: a repository not scanned or not read whole is an error (2)
    /// whatever was found; then found (1, unless `fail` is off); else 0.
    pub fn exit_code(&self, fail: bool) -> i32 {
        let s = self.summary();
        if s.failed + s.incomplete > 0 {
            crate::exit::ERROR
        } else if s.findings == 0 || !fail {
            crate::exit::CLEAN
        } else {
            crate::exit::FOUND
        }
    }

    fn scope(&self) -> String {
        let mode = match self.mode {
            Mode::Tree => "default branches",
            Mode::History => "whole histories",
        };
        if self.shard_count == 1 {
            return mode.to_string();
        }
        let shards: Vec<String> = self.shards.iter().map(u32::to_string).collect();
        format!(
            "{mode}, shard(s) {} of {}",
            shards.join(","),
            self.shard_count
        )
    }
}

/// Pure: the shards' reports as one. Refused when they are of different
/// sweeps, overlap, or leave a shard out.
pub fn merge(reports: Vec<SweepReport>) -> Result<SweepReport, String> {
    let first = reports.first().ok_or("no report to merge")?;
    let (organisation, mode, count) = (first.organisation.clone(), first.mode, first.shard_count);
    let mut shards = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut rows = Vec::new();
    if count == 0 {
        return Err("a report of 0 shards covers nothing".into());
    }
    for report in reports {
        if !report.organisation.eq_ignore_ascii_case(&organisation)
            || report.mode != mode
            || report.shard_count != count
        {
            return Err(format!(
                "the reports are of different sweeps ({} {:?} in {count} shards, and {} {:?} in {})",
                organisation, mode, report.organisation, report.mode, report.shard_count
            ));
        }
        claim_shards(&report.shards, count, &mut shards)?;
        for row in report.repositories {
            let owned = report
                .shards
                .iter()
                .any(|&index| crate::org::shard::Shard { index, count }.contains(&row.repository));
            if !owned {
                return Err(format!(
                    "{} is not in the shard(s) of the report that holds it",
                    row.repository
                ));
            }
            if !names.insert(row.repository.to_ascii_lowercase()) {
                return Err(format!("{} is in two of the reports", row.repository));
            }
            rows.push(row);
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|s| !shards.contains(s))
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard(s) {} of {count} are missing: their repositories were not scanned",
            missing.join(", ")
        ));
    }
    rows.sort_by(|a, b| a.repository.cmp(&b.repository));
    Ok(SweepReport {
        organisation,
        mode,
        shard_count: count,
        shards: shards.into_iter().collect(),
        repositories: rows,
    })
}

/// Adds a report's shards to those seen; each must exist and come once.
fn claim_shards(claimed: &[u32], count: u32, seen: &mut BTreeSet<u32>) -> Result<(), String> {
    for &shard in claimed {
        if shard == 0 || shard > count {
            return Err(format!("shard {shard} of {count} does not exist"));
        }
        if !seen.insert(shard) {
            return Err(format!("shard {shard} of {count} is in two of the reports"));
        }
    }
    Ok(())
}

pub fn write_json(report: &SweepReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut value = serde_json::to_value(report)?;
    value["tool"] = json!("keyguard");
    value["version"] = json!(env!("CARGO_PKG_VERSION"));
    value["summary"] = serde_json::to_value(report.summary())?;
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}

/// SARIF 2.1.0: one run per repository that is not clean, each naming its
/// repository (`versionControlProvenance`); one empty run when all are.
pub fn write_sarif(report: &SweepReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut runs: Vec<Value> = report
        .repositories
        .iter()
        .filter_map(|row| row.sarif_run.clone())
        .collect();
    if runs.is_empty() {
        let empty = crate::report::Report {
            target: format!("organisation {}", report.organisation),
            ..Default::default()
        };
        runs.push(crate::report::to_sarif(&empty)["runs"][0].take());
    }
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": runs,
    });
    serde_json::to_writer_pretty(&mut *out, &sarif)?;
    writeln!(out)
}

/// One line per finding or problem, then the headline.
pub fn write_text(report: &SweepReport, out: &mut dyn Write) -> std::io::Result<()> {
    for row in &report.repositories {
        for f in &row.findings {
            writeln!(out, "{}: {}", row.repository, finding_line(f))?;
        }
        for i in &row.incomplete {
            writeln!(out, "{}: error: incomplete scan: {i}", row.repository)?;
        }
        if let Some(error) = &row.error {
            writeln!(out, "{}: error: not scanned: {error}", row.repository)?;
        }
    }
    writeln!(out, "keyguard: {}", headline(report))
}

fn finding_line(f: &Value) -> String {
    let text = |k: &str| f[k].as_str().unwrap_or_default().to_string();
    let mut line = format!(
        "{}:{}:{}: {}",
        text("path"),
        f["line"],
        f["column"],
        text("message")
    );
    if let Some(commit) = f["commit"]["commit"].as_str() {
        let _ = write!(line, " in commit {}", commit.get(..12).unwrap_or(commit));
    }
    line
}

fn headline(report: &SweepReport) -> String {
    let s = report.summary();
    format!(
        "{} finding(s) in {} of {} repositories of {} ({}); {} clean, {} incomplete, {} not scanned",
        s.findings,
        s.with_findings,
        s.repositories,
        report.organisation,
        report.scope(),
        s.clean,
        s.incomplete,
        s.failed
    )
}

/// The job summary: the headline, and one table row per repository that
/// is not clean.
pub fn markdown_summary(report: &SweepReport) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut md = String::new();
    let icon = match report.exit_code(true) {
        crate::exit::CLEAN => "✅",
        crate::exit::FOUND => "🚨",
        _ => "❌",
    };
    let _ = writeln!(md, "### {icon} keyguard: {}\n", cell(&headline(report)));
    let rows: Vec<&Row> = report
        .repositories
        .iter()
        .filter(|r| r.status != Status::Clean)
        .collect();
    if rows.is_empty() {
        return md;
    }
    let _ = writeln!(
        md,
        "| Repository | Status | Findings | Detail |\n|---|---|---|---|"
    );
    for row in rows {
        let detail = match (&row.error, row.findings.first()) {
            (Some(error), _) => error.clone(),
            (None, Some(f)) => finding_line(f),
            (None, None) => row.incomplete.join("; "),
        };
        let _ = writeln!(
            md,
            "| [{}]({}) | {:?} | {} | {} |",
            cell(&row.repository),
            row.url,
            row.status,
            row.findings.len(),
            cell(&detail)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: Status, findings: usize) -> Row {
        let mut row = Row::failed(name, "", None, "x".into());
        row.status = status;
        row.error = None;
        row.sarif_run = None;
        row.findings = (0..findings)
            .map(|i| json!({"path": "a", "line": i, "column": 1, "message": "m"}))
            .collect();
        row
    }

    /// A repository name (starting with `prefix`) that shard `index` of
    /// `count` holds.
    fn name_in(prefix: &str, index: u32, count: u32) -> String {
        (0..)
            .map(|i| format!("acme/{prefix}-{i}"))
            .find(|n| crate::org::shard::Shard { index, count }.contains(n))
            .unwrap()
    }

    fn shard(index: u32, count: u32, rows: Vec<Row>) -> SweepReport {
        SweepReport {
            organisation: "acme".into(),
            mode: Mode::Tree,
            shard_count: count,
            shards: vec![index],
            repositories: rows,
        }
    }

    #[test]
    fn the_exit_code_puts_what_was_not_read_first() {
        let cases = [
            (vec![row("a", Status::Clean, 0)], true, 0),
            (vec![row("a", Status::Found, 2)], true, 1),
            (vec![row("a", Status::Found, 2)], false, 0),
            (
                vec![row("a", Status::Found, 2), row("b", Status::Failed, 0)],
                true,
                2,
            ),
            (vec![row("a", Status::Incomplete, 0)], false, 2),
        ];
        for (rows, fail, want) in cases {
            let names: Vec<_> = rows
                .iter()
                .map(|r| (r.repository.clone(), r.status))
                .collect();
            assert_eq!(
                shard(1, 1, rows).exit_code(fail),
                want,
                "{names:?} fail={fail}"
            );
        }
    }

    #[test]
    fn shards_merge_into_one_sorted_report() {
        let (a, b) = (name_in("a", 1, 2), name_in("b", 2, 2));
        let merged = merge(vec![
            shard(2, 2, vec![row(&b, Status::Found, 1)]),
            shard(1, 2, vec![row(&a, Status::Clean, 0)]),
        ])
        .unwrap();
        assert_eq!(merged.shards, vec![1, 2]);
        let names: Vec<_> = merged
            .repositories
            .iter()
            .map(|r| r.repository.as_str())
            .collect();
        assert_eq!(names, [a.as_str(), b.as_str()]);
        assert_eq!(merged.summary().with_findings, 1);
    }

    #[test]
    fn a_merge_refuses_a_missing_an_overlapping_or_a_foreign_shard() {
        let missing = merge(vec![shard(1, 3, vec![]), shard(3, 3, vec![])]);
        assert!(missing.unwrap_err().contains("shard(s) 2 of 3 are missing"));
        let twice = merge(vec![shard(1, 2, vec![]), shard(1, 2, vec![])]);
        assert!(twice.unwrap_err().contains("in two of the reports"));
        // A repository in a report whose shard does not hold it (a forged
        // or mixed-up report), or in two reports.
        let a = name_in("a", 1, 2);
        let misplaced = merge(vec![
            shard(1, 2, vec![row(&a, Status::Clean, 0)]),
            shard(2, 2, vec![row(&a.to_uppercase(), Status::Clean, 0)]),
        ]);
        assert!(misplaced.unwrap_err().contains("is not in the shard"));
        assert!(merge(vec![shard(3, 2, vec![])])
            .unwrap_err()
            .contains("does not exist"));
        assert!(merge(vec![shard(1, 0, vec![])])
            .unwrap_err()
            .contains("0 shards"));
        let mut other = shard(2, 2, vec![]);
        other.organisation = "other".into();
        assert!(merge(vec![shard(1, 2, vec![]), other])
            .unwrap_err()
            .contains("different sweeps"));
        assert!(merge(vec![]).is_err());
    }
}
