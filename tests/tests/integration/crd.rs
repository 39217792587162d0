//! The TwitterCredential CRD on a real apiserver: it installs, `kubectl
//! explain` shows its docs, every example is accepted, and bad resources are
//! refused by the apiserver itself with a message that names the problem.

use std::io::Write;
use std::process::{Command, Stdio};

use keyguard_operator::TwitterCredential;
use keyguard_tests::credential::{
    rotation, Credential, CredentialKey::BearerToken, Env, Permission,
};
use keyguard_tests::{fixtures, kube_helpers::install_crd, repo_root, ControlPlane};
use serde_json::{json, Value};

async fn control_plane_with_crd() -> ControlPlane {
    let cp = ControlPlane::start().await.expect("control plane starts");
    install_crd(&cp).await;
    let client = cp.client().await.unwrap();
    fixtures::create_namespace(&client, "team-news", &[]).await;
    cp
}

/// `kubectl <args>` with `input` on stdin: (success, stdout, stderr).
fn kubectl(cp: &ControlPlane, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = cp
        .kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed (it ships with Kubernetes; see README)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn crd_installs_and_explains_itself() {
    let cp = control_plane_with_crd().await;
    // `kubectl explain twcred` opens with what the resource is, not the
    // derive macro's placeholder.
    let (ok, out, err) = kubectl(&cp, &["explain", "twcred"], "");
    assert!(ok, "{err}");
    assert!(out.contains("declares, per environment"), "{out}");
    assert!(!out.contains("Auto-generated"), "{out}");
    let (ok, out, err) = kubectl(&cp, &["explain", "twcred.spec"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("KIND:       TwitterCredential") || out.contains("TwitterCredential"),
        "{out}"
    );
    assert!(
        out.contains("The environments (development, staging, production, ...)"),
        "{out}"
    );
    assert!(out.contains("deletionPolicy"), "{out}");

    let (ok, out, err) = kubectl(
        &cp,
        &["explain", "twittercredential.spec.environments.target.keys"],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("least exposure"), "{out}");

    // The short name and category resolve.
    let (ok, _, err) = kubectl(&cp, &["get", "keyguard", "-A"], "");
    assert!(ok, "{err}");
}

#[tokio::test]
async fn every_example_is_accepted_and_printed_with_columns() {
    let cp = control_plane_with_crd().await;
    let examples = repo_root().join("examples");
    let mut applied = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("kind: TwitterCredential") {
            continue;
        }
        let (ok, _, err) = kubectl(&cp, &["apply", "-f", "-"], &text);
        assert!(ok, "{} was rejected: {err}", path.display());
        assert!(
            !err.contains("Warning"),
            "{} printed a warning: {err}",
            path.display()
        );
        applied += 1;
    }
    assert!(
        applied >= 3,
        "expected the examples in {}",
        examples.display()
    );

    let (ok, out, err) = kubectl(&cp, &["get", "twcred", "-n", "team-news"], "");
    assert!(ok, "{err}");
    let header = out.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "ENVIRONMENTS", "REASON", "AGE"] {
        assert!(
            header.contains(column),
            "missing column {column} in {header:?}"
        );
    }
    assert!(out.contains("news-bot"), "{out}");
}

/// A valid resource, as JSON: each case of [`INVALID`] breaks it in a way
/// the builder cannot express (that is the point), then kubectl applies it.
fn valid() -> Value {
    let resource = Credential::named("bad")
        .in_namespace("team-news")
        .environment(
            Env::new("production")
                .source("keys")
                .target_namespace("prod")
                .target("x-creds")
                .keys([BearerToken])
                .permission(Permission::Read)
                .service_accounts(["app"])
                .rotation(rotation().bearer_every("720h").refresh_before("15m")),
        );
    serde_json::to_value(TwitterCredential::from(resource)).unwrap()
}

fn env0(r: &mut Value) -> &mut Value {
    &mut r["spec"]["environments"][0]
}

/// Each case: what is wrong, how to break a valid resource, and the words
/// the apiserver's refusal must contain.
type Breaker = fn(&mut Value);
const INVALID: &[(&str, Breaker, &[&str])] = &[
    (
        "duplicate environment names",
        |r| {
            let e = env0(r).clone();
            let mut e2 = e.clone();
            e2["target"]["secretName"] = json!("other");
            r["spec"]["environments"].as_array_mut().unwrap().push(e2);
        },
        &["Duplicate value", "production"],
    ),
    (
        "unknown permission",
        |r| env0(r)["access"]["permission"] = json!("admin"),
        &[
            "spec.environments[0].access.permission",
            "Unsupported value: \"admin\"",
        ],
    ),
    (
        "both every and schedule",
        |r| env0(r)["rotation"]["bearerToken"]["schedule"] = json!("0 3 * * *"),
        &["set exactly one of `every`"],
    ),
    (
        "neither every nor schedule",
        |r| env0(r)["rotation"]["bearerToken"] = json!({}),
        &["set exactly one of `every`"],
    ),
    (
        "empty key list",
        |r| env0(r)["target"]["keys"] = json!([]),
        &["spec.environments[0].target.keys", "at least 1 items"],
    ),
    (
        "unknown credential key",
        |r| env0(r)["target"]["keys"] = json!(["password"]),
        &["Unsupported value: \"password\""],
    ),
    (
        "duplicate keys",
        |r| env0(r)["target"]["keys"] = json!(["apiKey", "apiKey"]),
        &["Duplicate value: \"apiKey\""],
    ),
    (
        "bad duration",
        |r| env0(r)["rotation"]["bearerToken"]["every"] = json!("30 days"),
        &[
            "spec.environments[0].rotation.bearerToken.every",
            "should match",
        ],
    ),
    (
        "interval too short",
        |r| env0(r)["rotation"]["bearerToken"]["every"] = json!("10s"),
        &["`every` must be at least 1m"],
    ),
    (
        "refresh window longer than a token lives",
        |r| env0(r)["rotation"]["userToken"]["refreshBefore"] = json!("3h"),
        &["shorter than the 2h lifetime"],
    ),
    (
        "missing source",
        |r| {
            env0(r).as_object_mut().unwrap().remove("source");
        },
        &["spec.environments[0].source", "Required value"],
    ),
    (
        "target namespace with an invalid name",
        |r| env0(r)["target"]["namespace"] = json!("Prod_NS"),
        &["spec.environments[0].target.namespace", "should match"],
    ),
    (
        "target overwrites its own source",
        |r| {
            env0(r)["target"]
                .as_object_mut()
                .unwrap()
                .remove("namespace");
            env0(r)["target"]["secretName"] = json!("keys");
        },
        &["would overwrite its own source"],
    ),
    (
        "two environments write the same Secret",
        |r| {
            let mut e2 = env0(r).clone();
            e2["name"] = json!("staging");
            r["spec"]["environments"].as_array_mut().unwrap().push(e2);
        },
        &["must not write the same target Secret"],
    ),
    (
        "no environments",
        |r| r["spec"]["environments"] = json!([]),
        &["spec.environments", "at least 1 items"],
    ),
    (
        "environment name not a DNS label",
        |r| env0(r)["name"] = json!("Production!"),
        &["spec.environments[0].name", "should match"],
    ),
    (
        "restart target of an unknown kind",
        |r| env0(r)["restartTargets"] = json!([{"kind": "Pod", "name": "x"}]),
        &["Unsupported value: \"Pod\""],
    ),
    (
        "usage warning above 100%",
        |r| r["spec"]["monitoring"] = json!({"usage": {"every": "1h", "warnAtPercent": 150}}),
        &["warnAtPercent", "less than or equal to 100"],
    ),
    (
        "unknown field",
        |r| env0(r)["target"]["secretNmae"] = json!("typo"),
        &["unknown field", "secretNmae"],
    ),
];

#[tokio::test]
async fn invalid_resources_are_refused_with_readable_messages() {
    let cp = control_plane_with_crd().await;
    let (ok, _, err) = kubectl(
        &cp,
        &["apply", "--dry-run=server", "-f", "-"],
        &valid().to_string(),
    );
    assert!(ok, "the base resource must be valid: {err}");

    let mut failures = Vec::new();
    for (what, break_it, expected) in INVALID {
        let mut r = valid();
        break_it(&mut r);
        let (ok, _, err) = kubectl(&cp, &["apply", "-f", "-"], &r.to_string());
        if ok {
            failures.push(format!("{what}: was accepted"));
        } else if let Some(missing) = expected.iter().find(|e| !err.contains(*e)) {
            failures.push(format!("{what}: message lacks {missing:?}: {err}"));
        }
    }
    assert!(INVALID.len() >= 10);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kubectl_is_installed() {
    let out = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        out.is_ok_and(|o| o.status.success()),
        "kubectl is required: install it (e.g. `apt-get install kubectl` or the official release)"
    );
}
