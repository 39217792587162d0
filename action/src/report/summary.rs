//! The Markdown job summary (`$GITHUB_STEP_SUMMARY`) and PR comment body.

use std::fmt::Write;

use super::content::Report;

/// Marks keyguard's own PR comment so a later run updates it.
pub const COMMENT_MARKER: &str = "<!-- keyguard:report -->";

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown_summary(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{COMMENT_MARKER}");
    findings_section(&mut md, report);
    next_steps_section(&mut md, report);
    added_waivers_section(&mut md, report);
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "<sub>Scanned {}: {} inputs, {} bytes; waived {} inline, {} by ignore file, {} in baseline.</sub>",
        cell(&report.target),
        report.stats.scanned,
        report.stats.bytes,
        report.stats.waived_inline,
        report.ignored,
        report.baselined
    );
    if !report.examples.is_empty() {
        let _ = writeln!(
            md,
            "\n> ℹ️ {} of X's own published documentation example(s) found; not leaks, listed in the JSON report.",
            report.examples.len()
        );
    }
    for w in &report.warnings {
        let _ = writeln!(md, "\n> ⚠️ {}", cell(w));
    }
    for i in &report.incomplete {
        let _ = writeln!(md, "\n> ❌ incomplete scan: {}", cell(i));
    }
    md
}

/// The headline, and a table of the findings if there are any.
fn findings_section(md: &mut String, report: &Report) {
    if report.findings.is_empty() && !report.incomplete.is_empty() {
        let _ = writeln!(
            md,
            "### ❌ keyguard: incomplete scan: no X (Twitter) credential in what was read, but not everything was"
        );
        return;
    }
    if report.findings.is_empty() {
        let _ = writeln!(md, "### ✅ keyguard: no X (Twitter) credentials found");
        return;
    }
    let _ = writeln!(
        md,
        "### ❌ keyguard: {} X (Twitter) credential(s) found\n",
        report.findings.len()
    );
    let _ = writeln!(md, "| Location | Credential | Rule | Redacted | Commit |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for f in &report.findings {
        let commit = f
            .commit
            .as_ref()
            .map(|c| c.commit[..c.commit.len().min(12)].to_string())
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| `{}:{}` | {} | `{}` | `{}` | {} |",
            cell(&f.path),
            f.line,
            cell(f.credential.display_name()),
            f.rule_id,
            cell(&f.redacted()),
            commit
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "Revoke or rotate each credential in the X developer portal, then remove it from the code. To accept a known finding, add its fingerprint to `.keyguardignore`.");
}

/// For each known live credential found: whose it is and what to do now.
fn next_steps_section(md: &mut String, report: &Report) {
    let known: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.next_step.is_some())
        .collect();
    if known.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n#### 🚨 Live credentials: do this now\n");
    for f in known {
        let _ = writeln!(
            md,
            "- `{}:{}` {}: {}",
            cell(&f.path),
            f.line,
            cell(&f.rule_name),
            cell(f.next_step.as_deref().unwrap_or_default())
        );
    }
}

/// Waivers the change adds, for review.
fn added_waivers_section(md: &mut String, report: &Report) {
    if report.added_waivers.is_empty() {
        return;
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "#### ⚠️ This change adds {} waiver(s); review them, each hides a finding\n",
        report.added_waivers.len()
    );
    let _ = writeln!(md, "| Location | Waiver |");
    let _ = writeln!(md, "|---|---|");
    for w in &report.added_waivers {
        let _ = writeln!(md, "| `{}:{}` | {} |", cell(&w.path), w.line, cell(&w.what));
    }
}
