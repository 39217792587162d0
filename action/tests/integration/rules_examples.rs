//! Every rule's examples, from the rules file itself: each positive is
//! found by its rule, and no rule reports any negative.

use keyguard_scan::detect::{Detection, Detector};

fn detect(detector: &Detector, text: &str) -> Vec<Detection> {
    let mut out = Vec::new();
    detector.detect(text.as_bytes(), "example.txt", &mut out);
    out
}

#[test]
fn every_rule_finds_its_positives_and_not_its_negatives() {
    let detector = Detector::builtin();
    let mut failures = Vec::new();
    for (index, rule) in detector.rules.rules.iter().enumerate() {
        assert!(
            !rule.spec.examples.positive.is_empty() && !rule.spec.examples.negative.is_empty(),
            "rule {} needs positive and negative examples",
            rule.id()
        );
        for example in &rule.spec.examples.positive {
            let found = detect(&detector, example);
            if !found.iter().any(|d| d.rule == index) {
                let others: Vec<&str> = found
                    .iter()
                    .map(|d| detector.rules.rules[d.rule].id())
                    .collect();
                failures.push(format!(
                    "{}: missed positive {example:?} (found {others:?})",
                    rule.id()
                ));
            }
        }
        // A negative is a look-alike: no rule at all may report it.
        for example in &rule.spec.examples.negative {
            let found = detect(&detector, example);
            if !found.is_empty() {
                let ids: Vec<&str> = found
                    .iter()
                    .map(|d| detector.rules.rules[d.rule].id())
                    .collect();
                failures.push(format!(
                    "{}: reported negative {example:?} as {ids:?}",
                    rule.id()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_credential_has_a_rule() {
    let detector = Detector::builtin();
    for key in keyguard_credentials::CredentialKey::ALL {
        assert!(
            detector
                .rules
                .rules
                .iter()
                .any(|r| r.spec.credential == Some(key)),
            "no rule finds {key}"
        );
    }
}

#[test]
fn every_decoder_finds_its_positives_and_not_its_negatives() {
    let detector = Detector::builtin();
    let described: Vec<&str> = detector
        .rules
        .decoders
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    let mut coded = keyguard_scan::decode::Decoders::IDS.to_vec();
    let mut sorted = described.clone();
    sorted.sort();
    coded.sort();
    assert_eq!(
        sorted, coded,
        "every decoder in code is described in the rules file, and back"
    );
    let mut failures = Vec::new();
    for decoder in &detector.rules.decoders {
        assert!(
            !decoder.examples.positive.is_empty() && !decoder.examples.negative.is_empty(),
            "decoder {} needs positive and negative examples",
            decoder.id
        );
        for example in &decoder.examples.positive {
            let found = detect(&detector, example);
            if !found.iter().any(|d| d.decoded) {
                failures.push(format!("{}: missed positive {example:?}", decoder.id));
            }
        }
        for example in &decoder.examples.negative {
            let found = detect(&detector, example);
            if !found.is_empty() {
                let ids: Vec<&str> = found
                    .iter()
                    .map(|d| detector.rules.rules[d.rule].id())
                    .collect();
                failures.push(format!(
                    "{}: reported negative {example:?} as {ids:?}",
                    decoder.id
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
