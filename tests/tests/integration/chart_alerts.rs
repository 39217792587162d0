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
