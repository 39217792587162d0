//! The chart's alerting rules under `promtool test rules` (promtool built
//! from Prometheus' Go module): each alert fires on the series that should
//! raise it, with its labels and text, and stays quiet on healthy ones.

use std::process::Command;

use crate::chart_values::{find, render};
use keyguard_tests::control_plane::ensure_promtool;
use keyguard_tests::repo_root;

fn promtool_test(rules: &serde_yaml::Value) -> (bool, String) {
    let promtool =
        ensure_promtool().expect("promtool builds from tests/promtool/go.mod (needs Go)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml::to_string(rules).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        repo_root().join("tests/promtool/alerts_test.yaml"),
        dir.path().join("alerts_test.yaml"),
    )
    .unwrap();
    let out = Command::new(promtool)
        .args(["test", "rules", "alerts_test.yaml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn rendered_rules(sets: &[&str]) -> serde_yaml::Value {
    let mut all = vec!["metrics.prometheusRule.enabled=true"];
    all.extend_from_slice(sets);
    let docs = render(&all).unwrap();
    find(&docs, "PrometheusRule").expect("a PrometheusRule")["spec"].clone()
}

#[test]
fn every_alert_fires_when_it_should_and_not_otherwise() {
    let (ok, report) = promtool_test(&rendered_rules(&[]));
    assert!(ok, "{report}");
    assert!(report.contains("SUCCESS"), "{report}");
}

/// The test can fail: with the usage threshold above the fixture's 90%,
/// the expected KeyguardUsageHigh alert no longer fires.
#[test]
fn the_alert_tests_notice_a_changed_threshold() {
    let (ok, report) = promtool_test(&rendered_rules(&[
        "metrics.prometheusRule.usageRatioThreshold=0.95",
    ]));
    assert!(!ok, "{report}");
    assert!(report.contains("KeyguardUsageHigh"), "{report}");
}

/// Every metric an alert reads is one the operator exports.
#[test]
fn alerts_read_only_metrics_the_operator_exports() {
    let rules = serde_yaml::to_string(&rendered_rules(&[])).unwrap();
    let exported = keyguard_operator::metrics::Metrics::default().render();
    let mut read = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("keyguard_") {
            read += 1;
            assert!(
                exported.contains(&format!("# TYPE {} ", word.trim_end_matches("_total")))
                    || exported.contains(&format!("# TYPE {word} ")),
                "an alert reads {word}, which the operator does not export:\n{exported}"
            );
        }
    }
    assert!(read >= 7, "{rules}");
}

/// The Grafana dashboard the chart ships: the ConfigMap holds the file as
/// it is in the repository, every query reads only metrics the operator
/// exports, and every query parses as PromQL (promtool, with Grafana's
/// variables filled in).
#[test]
fn the_dashboard_reads_only_exported_metrics_and_every_query_parses() {
    let docs = render(&["grafanaDashboard.enabled=true"]).unwrap();
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "kg-dashboard")
        .expect("the dashboard ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped = map["data"]["twitter-keyguard.json"].as_str().unwrap();
    let file = std::fs::read_to_string(
        repo_root().join("charts/twitter-keyguard/files/dashboards/twitter-keyguard.json"),
    )
    .unwrap();
    assert_eq!(shipped.trim_end(), file.trim_end());
    let dashboard: serde_json::Value = serde_json::from_str(&file).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 12, "{exprs:?}");
    let exported = keyguard_operator::metrics::Metrics::default().render();
    for expr in &exprs {
        let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for word in words.filter(|w| w.starts_with("keyguard_")) {
            let family = word.trim_end_matches("_bucket").trim_end_matches("_total");
            assert!(
                exported.contains(&format!("# TYPE {family} ")),
                "the dashboard reads {word}, which the operator does not export"
            );
        }
    }
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let filled = e
                .replace("$__rate_interval", "5m")
                .replace("$namespace", ".*");
            serde_json::json!({"record": format!("dashboard:panel_{i}"), "expr": filled})
        })
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yaml");
    std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
    let promtool =
        ensure_promtool().expect("promtool builds from tests/promtool/go.mod (needs Go)");
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
