//! SARIF 2.1.0, as GitHub code scanning accepts it.

use std::io::Write;

use serde_json::{json, Value};

use super::Report;
use crate::rules::RuleSet;

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
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)}
                    }
                }],
                "partialFingerprints": {"keyguardValue/v1": f.fingerprint().to_string()},
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
            "tool": {"driver": {
                "name": "keyguard",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/twitter-keyguard/twitter-keyguard",
                "rules": descriptors
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": "file:///"}},
            "results": results
        }]
    })
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
