//! The committed CRD is exactly what the Rust types generate.

#[test]
fn committed_crd_matches_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/twittercredentials.keyguard.dev.yaml"
    );
    let committed =
        std::fs::read_to_string(path).expect("crds/twittercredentials.keyguard.dev.yaml exists");
    let generated = keyguard_operator::resource::crd_yaml().unwrap();
    assert!(
        committed == generated,
        "crds/twittercredentials.keyguard.dev.yaml is out of date with operator/src/resource.rs; \
         regenerate it with:\n  cargo run -p keyguard-operator -- crd > crds/twittercredentials.keyguard.dev.yaml"
    );
}

#[test]
fn committed_crd_reference_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/crd-reference.md");
    let committed = std::fs::read_to_string(path).expect("docs/crd-reference.md exists");
    let generated = keyguard_operator::crd_reference::markdown().unwrap();
    assert!(
        committed == generated,
        "docs/crd-reference.md is out of date with operator/src/resource.rs; regenerate it with:\n  cargo run -p keyguard-operator -- crd-reference > docs/crd-reference.md"
    );
    // Every field of the spec is there, with its description.
    for field in [
        "spec.environments[].name",
        "spec.environments[].rotation",
        "spec.accessReview.every",
    ] {
        assert!(
            generated.contains(&format!("| `{field}` |")),
            "{field} is missing"
        );
    }
}
