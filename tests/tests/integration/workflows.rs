//! The GitHub workflows: every one passes actionlint (built from its Go
//! module, with shellcheck from Debian checking each `run:` script), and the
//! release workflow publishes what the Action's install step downloads.

use std::path::Path;
use std::process::{Command, Output};

use keyguard_tests::control_plane::ensure_actionlint;
use keyguard_tests::repo_root;

fn actionlint(dir: &Path) -> Output {
    let exe = ensure_actionlint().expect("actionlint builds from tests/actionlint/go.mod");
    assert!(
        Command::new("shellcheck").arg("--version").output().is_ok(),
        "shellcheck is missing: apt-get install shellcheck (actionlint uses it to check run: scripts)"
    );
    Command::new(exe)
        .args(["-pyflakes=", "-no-color"])
        .current_dir(dir)
        .output()
        .expect("actionlint runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn every_workflow_passes_actionlint() {
    let out = actionlint(&repo_root());
    assert!(out.status.success(), "{}", text(&out));
}

/// The check can fail: a workflow that pastes a pull request's title into
/// a script (script injection) and quotes nothing is refused.
#[test]
fn actionlint_refuses_an_injectable_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status();
    assert!(init.is_ok_and(|s| s.success()), "git init");
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("bad.yml"),
        "on: pull_request\njobs:\n  greet:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.event.pull_request.title }} $HOME\n",
    )
    .unwrap();
    let out = actionlint(dir.path());
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("potentially untrusted"), "{report}");
}

fn release() -> serde_yaml::Value {
    let path = repo_root().join(".github/workflows/release.yml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn all_steps(workflow: &serde_yaml::Value) -> String {
    serde_yaml::to_string(&workflow["jobs"]).unwrap()
}

/// What install.sh downloads is what the release publishes: the asset
/// name pattern, sha256sums.txt, and a target for every runner it maps.
#[test]
fn the_release_publishes_what_the_action_installs() {
    let workflow = release();
    let install = std::fs::read_to_string(repo_root().join("action/install.sh")).unwrap();
    let targets: Vec<String> = workflow["jobs"]["binaries"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_string())
        .collect();
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(targets.iter().any(|t| t == target), "no {target} build");
        assert!(
            install.contains(&format!("target={target}")),
            "install.sh does not map a runner to {target}"
        );
    }
    let jobs = all_steps(&workflow);
    assert!(jobs.contains(r#"dist/$bin-$TAG-$TARGET.tar.gz"#));
    assert_eq!(
        workflow["jobs"]["check-version"]["outputs"]["tag"],
        "${{ steps.version.outputs.tag }}"
    );
    assert!(install.contains(r#"asset="keyguard-v$version-$target.tar.gz""#));
    assert!(install.contains("sha256sums.txt"));
    assert!(jobs.contains("sha256sum -- *.tar.gz *.yaml > sha256sums.txt"));
    // The kubectl-only install is attached and checksummed too.
    assert!(jobs.contains("cp deploy/install.yaml dist/install.yaml"));
    // The Action's tags point to a commit whose tree pins the assets'
    // checksums (what install.sh trusts for a SHA-pinned `uses:`), kept
    // reachable by its own tag; the dry run writes the pins too.
    let steps = workflow["jobs"]["release"]["steps"].as_sequence().unwrap();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("release.yml has no step {name:?}"))
    };
    let pin = step("Pin the checksums in the Action's tree");
    assert_eq!(
        pin["run"].as_str().unwrap(),
        r#"scripts/pin-action-checksums.sh dist "$TAG" action/sha256sums.txt && cat action/sha256sums.txt"#
    );
    assert!(pin["if"].is_null(), "the dry run must pin too");
    let tags = step("Move the Action's tags to the pinned commit")["run"]
        .as_str()
        .unwrap();
    for line in [
        "git add action/sha256sums.txt",
        r#"git tag -f "$major" HEAD"#,
        r#"git push origin "refs/tags/action/$TAG""#,
    ] {
        assert!(tags.contains(line), "the tag step lacks {line:?}");
    }
    assert!(install.contains(r#"pins="$here/sha256sums.txt""#));
}

/// The tag publishes signed artifacts, images for both architectures and
/// the chart as an OCI artifact, and refuses a tag that is not the version.
#[test]
fn the_release_signs_and_publishes_images_chart_and_sbom() {
    let workflow = release();
    let jobs = all_steps(&workflow);
    for expected in [
        "cosign sign-blob --yes --bundle sha256sums.txt.sigstore.json sha256sums.txt",
        "cosign sign --yes \"$REF@$DIGEST\"",
        "anchore/sbom-action",
        "platforms: linux/amd64,linux/arm64",
        "helm push",
        "oci://ghcr.io/$owner/charts",
        "does not match the workspace version",
    ] {
        assert!(jobs.contains(expected), "release.yml lacks {expected:?}");
    }
    assert_eq!(
        workflow["jobs"]["release"]["permissions"]["id-token"], "write",
        "keyless signing needs an OIDC token"
    );
    assert_eq!(workflow["permissions"]["contents"], "read");
    let on = &workflow["on"];
    assert_eq!(on["push"]["tags"][0], "v*.*.*");
}

/// A dry run by hand builds everything and publishes nothing: every step
/// that publishes, signs, pushes or logs in to a registry runs only for a
/// pushed tag. The SBOM lists what ships (the binaries, built with their
/// dependency list embedded), and the binaries carry build provenance.
#[test]
fn a_dispatched_release_is_a_dry_run_and_the_sbom_is_of_what_ships() {
    let workflow = release();
    assert!(
        workflow["on"]["workflow_dispatch"].is_null()
            || workflow["on"]["workflow_dispatch"].is_mapping()
    );
    assert!(workflow["on"]
        .as_mapping()
        .unwrap()
        .contains_key("workflow_dispatch"));
    assert_eq!(
        workflow["env"]["PUBLISH"],
        "${{ github.event_name == 'push' }}"
    );
    let publishes = [
        "gh release create",
        "git push",
        "helm push",
        "cosign sign",
        "helm registry login",
    ];
    let mut guarded = 0;
    for (job, spec) in workflow["jobs"].as_mapping().unwrap() {
        for step in spec["steps"].as_sequence().unwrap() {
            let run = step["run"].as_str().unwrap_or_default();
            let uses = step["uses"].as_str().unwrap_or_default();
            let publishing = publishes.iter().any(|p| run.contains(p))
                || [
                    "docker/login-action",
                    "sigstore/cosign-installer",
                    "actions/attest-build-provenance",
                ]
                .iter()
                .any(|a| uses.starts_with(a));
            if publishing {
                assert_eq!(
                    step["if"], "env.PUBLISH == 'true'",
                    "{job:?}: {step:?} runs in a dry run"
                );
                guarded += 1;
            }
            if uses.starts_with("docker/build-push-action") {
                assert_eq!(
                    step["with"]["push"], "${{ env.PUBLISH == 'true' }}",
                    "{job:?} pushes in a dry run"
                );
            }
            if uses.starts_with("anchore/sbom-action") {
                assert_eq!(
                    step["with"]["path"], "shipped",
                    "the SBOM is of the source tree, not of what ships"
                );
            }
        }
    }
    assert!(guarded >= 9, "only {guarded} publishing steps found");
    let jobs = all_steps(&workflow);
    assert!(
        jobs.contains("cargo auditable build --release --locked"),
        "binaries without their dependency list"
    );
    assert!(jobs.contains("actions/attest-build-provenance@"));
    assert_eq!(
        workflow["jobs"]["release"]["permissions"]["attestations"],
        "write"
    );
}

/// Every third-party action is pinned by a full commit SHA with its version
/// in a comment (GitHub's hardening guide, Scorecard's Pinned-Dependencies):
/// a moved tag cannot change what runs. This repository's own action is
/// exempt (a reusable workflow of a release calls that release's action).
#[test]
fn every_third_party_action_is_pinned_by_sha_with_its_version() {
    let dir = repo_root().join(".github/workflows");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(rest) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
            else {
                continue;
            };
            let (target, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            if target.starts_with("./") || target.starts_with("twitter-keyguard/twitter-keyguard") {
                continue;
            }
            let (_, sha) = target
                .split_once('@')
                .unwrap_or_else(|| panic!("{}:{}: no ref in {rest}", path.display(), n + 1));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{}:{}: {target} is not pinned by a commit SHA",
                path.display(),
                n + 1
            );
            assert!(
                !comment.trim().is_empty(),
                "{}:{}: {target} has no version comment",
                path.display(),
                n + 1
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} uses: lines found");
}

/// Dependabot updates the crates, the pinned actions and every Go module
/// the tests build from: a new module under tests/ must be added there.
#[test]
fn dependabot_covers_every_ecosystem_pinned_here() {
    let path = repo_root().join(".github/dependabot.yml");
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let updates = config["updates"].as_sequence().unwrap();
    let of = |ecosystem: &str| {
        updates
            .iter()
            .find(|u| u["package-ecosystem"] == ecosystem)
            .unwrap_or_else(|| panic!("no {ecosystem} updates"))
    };
    assert_eq!(of("cargo")["directory"], "/");
    assert_eq!(of("github-actions")["directory"], "/");
    let listed: Vec<&str> = of("gomod")["directories"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("tests")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("go.mod").exists() {
            modules.push(format!(
                "/tests/{}",
                dir.file_name().unwrap().to_str().unwrap()
            ));
        }
    }
    assert!(modules.len() >= 4, "{modules:?}");
    for module in modules {
        assert!(
            listed.contains(&module.as_str()),
            "{module} is not in dependabot.yml"
        );
    }
}
