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

/// X's published example values, as X prints them, with the credential
/// each is and the page that prints it.
const X_EXAMPLES: [(&str, &str, &str); 22] = [
    ("xvz1evFS4wEEPTGEFPHBog", "apiKey", "oauth-1-0a/creating-a-signature"), // keyguard:allow
    ("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", "apiKeySecret", "oauth-1-0a/creating-a-signature"), // keyguard:allow
    ("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "accessToken", "oauth-1-0a/creating-a-signature"), // keyguard:allow
    ("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE", "accessTokenSecret", "oauth-1-0a/creating-a-signature"), // keyguard:allow
    ("L8qq9PZyRg6ieKGEKhZolGC0vJWLw8iEJ88DRdyOg", "apiKeySecret", "oauth-2-0/bearer-tokens"), // keyguard:allow
    ("AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F", "bearerToken", "oauth-2-0/bearer-tokens"), // keyguard:allow
    ("AAAAAAAAAAAAAAAAAAAAAFnz2wAAAAAAxTmQbp%2BIHDtAhTBbyNJon%2BA72K4%3DeIaigY0QBrv6Rp8KZQQLOTpo9ubw5Jt", "bearerToken", "authentication/oauth-2-0"), // keyguard:allow
    ("WTNrQS14bUhpMl83aU5adTd2NWM6MTpjaQ", "clientId", "oauth-2-0/user-access-token"), // keyguard:allow
    ("-RoKx3x58JA8Sm9JIt2fmAjq3q5GX-bqZ3vjJxSeGsdmGtXEbP", "clientSecret", "oauth-2-0/user-access-token"), // keyguard:allow
    ("M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ", "clientId", "oauth-2-0/user-access-token"), // keyguard:allow
    ("Q0Mzb0VhZ0V5dmNXSTEyNER2MFNfVW50RzdXdTN6STFxQlVkTGhTc1lCdlBiOjE2MjIxNDc3NDM5MTQ6MToxOmF0OjE", "userAccessToken", "oauth-2-0/user-access-token"), // keyguard:allow
    ("bWRWa3gzdnk3WHRGU1o0bmRRcTJ5VUxWX1lZTDdJSUtmaWcxbTVxdEFXcW5tOjE2MjIxNDc3NDM5MTQ6MToxOnJ0OjE", "refreshToken", "oauth-2-0/user-access-token"), // keyguard:allow
    ("rG9n6402A3dbUJKzXTNX4oWHJ", "apiKey", "oauth-2-0/user-access-token"), // keyguard:allow
    ("cChZNFj6T5R0TigYB9yd1w", "apiKey", "oauth-1-0a/obtaining-user-access-tokens"), // keyguard:allow
    ("veNRnAWe6inFuo8o2u8SLLZLjolYDmDP7SzL0YfYI", "accessTokenSecret", "oauth-1-0a/obtaining-user-access-tokens"), // keyguard:allow
    ("7588892-kagSNqWge8gB1WwE3plnFsJHAZVfxWD7Vb57p0b4", "accessToken", "oauth-1-0a/obtaining-user-access-tokens"), // keyguard:allow
    ("PbKfYqSryyeKDWz4ebtY3o5ogNLG11WJuZBc9fQrQo", "accessTokenSecret", "oauth-1-0a/obtaining-user-access-tokens"), // keyguard:allow
    ("OqEqJeafRSF11jBMStrZz", "apiKey", "authentication/api-reference"), // keyguard:allow
    ("Kd75W4OQfb2oJTV0vzGzeXftVAwgMnEK9MumzYcM", "accessTokenSecret", "authentication/api-reference"), // keyguard:allow
    ("6253282-eWudHldSbIaelX7swmsiHImEL4KinwaGloHANdrY", "accessToken", "api-reference/access_token"), // keyguard:allow
    ("2EEfA6BG5ly3sR3XjE0IBSnlQu4ZrUzPiYTmrkVU", "accessTokenSecret", "api-reference/access_token"), // keyguard:allow
    ("2EEfA6BG3ly3sR3RjE0IBSnlQu4ZrUzPiYKmrkVU", "accessTokenSecret", "api-reference/access_token"), // keyguard:allow
];

#[test]
fn the_published_examples_list_is_x_s_values_and_nothing_else() {
    let rules = keyguard_scan::rules::RuleSet::builtin();
    let listed = &rules.published_examples;
    assert_eq!(
        listed.len(),
        X_EXAMPLES.len(),
        "one entry per known X example value"
    );
    for (value, credential, page) in X_EXAMPLES {
        let fp = keyguard_credentials::fingerprint(value.as_bytes()).to_string();
        let entry = listed
            .iter()
            .find(|e| e.fingerprint == fp)
            .unwrap_or_else(|| panic!("{credential} from {page} ({fp}) is not listed"));
        assert_eq!(entry.credential.as_str(), credential, "{fp}");
        assert!(
            entry.published_at.ends_with(page),
            "{fp}: {}",
            entry.published_at
        );
        assert!(
            entry.published_at.starts_with("https://docs.x.com/")
                || entry.published_at.starts_with("https://developer.x.com/"),
            "{fp}: X's own pages only"
        );
        // And the scanner finds each one where people copy it.
        let found = detect(
            &Detector::builtin(),
            &format!("TWITTER_{credential} = \"{value}\"\n"),
        );
        assert!(
            found
                .iter()
                .any(|d| d.value.fingerprint().to_string() == fp),
            "{credential} {fp} is not even found"
        );
    }
}
