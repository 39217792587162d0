//! SARIF 2.1.0, as GitHub code scanning accepts it: URIs relative to
//! `%SRCROOT%` (which GitHub resolves to the checkout) and percent-encoded,
//! regions with their end, a `primaryLocationLineHash` that follows the
//! credential rather than the line (so a history finding and the same value
//! in the tree are one alert), and an invocation that says whether the run
//! succeeded.

use std::io::Write;

use percent_encoding::{AsciiSet, CONTROLS};
use serde_json::{json, Value};

use super::content::Report;
use crate::finding::Finding;
use crate::rules::RuleSet;

/// What a relative URI reference must escape; `/` stays a separator.
const URI_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b':');

/// Pure: a path as a relative URI reference.
/// A path that is not UTF-8 is encoded from its real bytes (see
/// `path_text`).
pub fn path_uri(path: &str) -> String {
    percent_encoding::percent_encode(&crate::path_text::to_bytes(path), URI_ESCAPE).to_string()
}

fn location(f: &Finding) -> Value {
    let start = f.column.max(1);
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": path_uri(&f.path), "uriBaseId": "%SRCROOT%"},
            "region": {
                "startLine": f.line.max(1),
                "startColumn": start,
                "endLine": f.line.max(1),
                "endColumn": start + f.value.expose().len(),
            }
        }
    })
}

fn driver(rules: Vec<Value>) -> Value {
    json!({
        "name": "keyguard",
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "informationUri": "https://github.com/twitter-keyguard/twitter-keyguard",
        "rules": rules
    })
}

/// SARIF for a run that could not scan: no results, and why.
pub fn failed_sarif(message: &str) -> Value {
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver(Vec::new())},
            "invocations": [{
                "executionSuccessful": false,
                "toolExecutionNotifications": [{"level": "error", "message": {"text": message}}]
            }],
            "results": []
        }]
    })
}

pub fn to_sarif(report: &Report) -> Value {
    let rules = RuleSet::builtin();
    let rule_index = |id: &str| rules.rules.iter().position(|r| r.id() == id);
    let descriptors: Vec<Value> = rules
        .rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "name": to_pascal(r.id()),
                "shortDescription": {"text": r.spec.name},
                "fullDescription": {"text": format!("{} committed to the repository. Anyone who can read the repository can use it.", r.spec.name)},
                "help": {
                    "text": "Revoke or rotate the credential in the X developer portal, remove it from the code (and history), and load it from a secret store at run time.",
                    "markdown": "Revoke or rotate the credential in the [X developer portal](https://developer.x.com/en/portal/dashboard), remove it from the code (and from history), and load it at run time from a secret store, such as a Kubernetes Secret managed by twitter-keyguard."
                },
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": ["security", "secret", "twitter", "x"], "security-severity": "8.0", "precision": "high"}
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule_id,
                "level": "error",
                "message": {"text": f.message()},
                "locations": [location(f)],
                "partialFingerprints": {
                    "keyguardValue/v1": f.fingerprint().to_string(),
                    "primaryLocationLineHash": format!("{}:1", f.fingerprint().to_string().trim_start_matches("sha256:")),
                },
                "properties": {"credential": f.credential, "verification": f.verification}
            });
            if let Some(i) = rule_index(&f.rule_id) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(c) = &f.commit {
                result["properties"]["commit"] = json!(c.commit);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver(descriptors)},
            "invocations": [invocation(report)],
            "results": results
        }]
    })
}

/// The run's invocation: unsuccessful, with an error notification for
/// each, when a limit kept something unread; the findings stay.
fn invocation(report: &Report) -> Value {
    if report.incomplete.is_empty() {
        return json!({"executionSuccessful": true});
    }
    let notes: Vec<Value> = report
        .incomplete
        .iter()
        .map(|i| json!({"level": "error", "message": {"text": format!("incomplete scan: {i}")}}))
        .collect();
    json!({"executionSuccessful": false, "toolExecutionNotifications": notes})
}

fn to_pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub fn write_sarif(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_sarif(report))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_relative_uri_references() {
        let cases = [
            ("src/bot.py", "src/bot.py"),
            ("my dir/a b.env", "my%20dir/a%20b.env"),
            ("<stdin>", "%3Cstdin%3E"),
            ("100%/x#1?.txt", "100%25/x%231%3F.txt"),
            ("archive.zip!/inner/.env", "archive.zip!/inner/.env"),
            ("c:/x", "c%3A/x"),
            ("caf\u{e9}.py", "caf%C3%A9.py"),
        ];
        for (path, want) in cases {
            assert_eq!(path_uri(path), want, "{path}");
        }
    }
}
