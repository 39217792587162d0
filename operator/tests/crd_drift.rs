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
