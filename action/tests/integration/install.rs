//! The Action's install step (`action/install.sh`) run as a runner runs
//! it, against a local stand-in for GitHub's release downloads: a tagged
//! ref gets the release asset for its version, checked against
//! sha256sums.txt and cached; a tampered checksum is refused; a ref with no
//! release builds from source. An Action tree that pins its release's
//! checksums (as the commit the release tags does) accepts only those
//! bytes, whatever the ref and whatever the release itself says.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::releases;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ASSET_TARGET: &str = "x86_64-unknown-linux-musl";

fn asset_name() -> String {
    format!("keyguard-v{VERSION}-{ASSET_TARGET}.tar.gz")
}

/// The release asset: this build's keyguard in a tarball, as the release
/// workflow packs it.
fn asset() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_keyguard"), dir.path().join("keyguard")).unwrap();
    let tarball = dir.path().join("asset.tar.gz");
    let status = Command::new("tar")
        .args(["-czf", tarball.to_str().unwrap(), "-C"])
        .arg(dir.path())
        .arg("keyguard")
        .status()
        .expect("tar runs (apt-get install tar)");
    assert!(status.success());
    std::fs::read(tarball).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Files of a release `v{VERSION}` of acme/keyguard, with the checksum
/// file `sums` makes from the asset's true digest.
fn release(sums: impl Fn(&str) -> String) -> HashMap<String, Vec<u8>> {
    release_of(asset(), sums)
}

/// As [`release`], of the asset `bytes` (two calls of [`asset`] differ:
/// tar keeps the copy's modification time).
fn release_of(bytes: Vec<u8>, sums: impl Fn(&str) -> String) -> HashMap<String, Vec<u8>> {
    let base = format!("/acme/keyguard/releases/download/v{VERSION}");
    let listed = format!("{}  {}\n", sums(&sha256_hex(&bytes)), asset_name());
    HashMap::from([
        (format!("{base}/{}", asset_name()), bytes),
        (format!("{base}/sha256sums.txt"), listed.into_bytes()),
    ])
}

struct Runner {
    dir: tempfile::TempDir,
}

struct Installed {
    code: Option<i32>,
    log: String,
    path_lines: Vec<PathBuf>,
}

impl Runner {
    fn new() -> Self {
        Runner {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn tool_cache(&self) -> PathBuf {
        self.dir.path().join("toolcache")
    }

    /// Runs the install step for `ref_` with `extra_path` in front of a
    /// PATH that holds no keyguard.
    async fn install(&self, server: &str, ref_: &str, extra_path: Option<&Path>) -> Installed {
        let script = keyguard_tests::repo_root().join("action/install.sh");
        self.install_from(&script, server, ref_, extra_path).await
    }

    /// Runs the install step of the Action tree `script` belongs to.
    async fn install_from(
        &self,
        script: &Path,
        server: &str,
        ref_: &str,
        extra_path: Option<&Path>,
    ) -> Installed {
        let github_path = self.dir.path().join("github_path");
        let _ = std::fs::remove_file(&github_path);
        let temp = self.dir.path().join("temp");
        std::fs::create_dir_all(&temp).unwrap();
        let path = path_without_keyguard(extra_path);
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .env_clear()
            .env("PATH", path)
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("GITHUB_SERVER_URL", server)
            .env("GITHUB_PATH", &github_path)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TOOL_CACHE", self.tool_cache())
            .env("RUNNER_TEMP", &temp)
            .env("KEYGUARD_ACTION_REPOSITORY", "acme/keyguard")
            .env("KEYGUARD_ACTION_REF", ref_)
            // The source fallback builds from this workspace's debug
            // artifacts instead of a cold release build.
            .env("KEYGUARD_INSTALL_DEBUG", "1")
            .env(
                "CARGO_TARGET_DIR",
                keyguard_tests::repo_root().join("target"),
            );
        for var in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("bash runs"))
            .await
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let path_lines = std::fs::read_to_string(&github_path)
            .unwrap_or_default()
            .lines()
            .map(PathBuf::from)
            .collect();
        Installed {
            code: out.status.code(),
            log,
            path_lines,
        }
    }
}

/// The test's PATH minus any directory with a keyguard in it, so what the
/// step finds is what it installed.
fn path_without_keyguard(front: Option<&Path>) -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    front
        .map(|p| p.display().to_string())
        .into_iter()
        .chain(
            rest.split(':')
                .filter(|d| !Path::new(d).join("keyguard").exists())
                .map(str::to_string),
        )
        .collect::<Vec<_>>()
        .join(":")
}

fn version_of(dir: &Path) -> String {
    let out = Command::new(dir.join("keyguard"))
        .arg("--version")
        .output()
        .expect("the installed keyguard runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_tag_installs_the_verified_asset_and_reuses_the_tool_cache() {
    let (server, requests) = releases::start(release(|true_sum| true_sum.to_string())).await;
    let runner = Runner::new();
    let ref_ = format!("v{VERSION}");

    let first = runner.install(&server, &ref_, None).await;
    assert_eq!(first.code, Some(0), "{}", first.log);
    let dir = runner
        .tool_cache()
        .join(format!("keyguard/{VERSION}/{ASSET_TARGET}"));
    assert_eq!(first.path_lines, vec![dir.clone()], "{}", first.log);
    assert!(version_of(&dir).starts_with(&format!("keyguard {VERSION}")));
    let asked = requests.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![
            format!("/acme/keyguard/releases/download/v{VERSION}/sha256sums.txt"),
            format!(
                "/acme/keyguard/releases/download/v{VERSION}/{}",
                asset_name()
            ),
        ]
    );

    // A later job on the same runner: the tool cache, no download.
    let again = runner.install(&server, &ref_, None).await;
    assert_eq!(again.code, Some(0), "{}", again.log);
    assert_eq!(again.path_lines, vec![dir.clone()]);
    assert_eq!(requests.lock().unwrap().len(), 2, "{}", again.log);

    // That keyguard on PATH already: used as it is.
    let on_path = runner.install(&server, &ref_, Some(&dir)).await;
    assert_eq!(on_path.code, Some(0), "{}", on_path.log);
    assert!(on_path.log.contains("already on PATH"), "{}", on_path.log);
    assert!(on_path.path_lines.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyguard_of_another_version_on_path_is_not_trusted() {
    let (server, _) = releases::start(release(|true_sum| true_sum.to_string())).await;
    let runner = Runner::new();
    // An older keyguard left on a self-hosted runner.
    let stale = runner.dir.path().join("stale");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(
        stale.join("keyguard"),
        "#!/bin/sh\necho 'keyguard 0.0.1 (0000000)'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        stale.join("keyguard"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let out = runner
        .install(&server, &format!("v{VERSION}"), Some(&stale))
        .await;
    assert_eq!(out.code, Some(0), "{}", out.log);
    assert!(out.log.contains("ignoring keyguard 0.0.1"), "{}", out.log);
    assert_eq!(out.path_lines.len(), 1, "{}", out.log);
    assert!(out.path_lines[0].starts_with(runner.tool_cache()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_checksum_is_refused_with_a_clear_error() {
    let tampered = "0".repeat(64);
    let (server, _) = releases::start(release(|_| tampered.clone())).await;
    let runner = Runner::new();

    let out = runner.install(&server, &format!("v{VERSION}"), None).await;
    assert_eq!(out.code, Some(1), "{}", out.log);
    assert!(
        out.log
            .contains("::error title=keyguard install::checksum mismatch for")
            && out.log.contains(&tampered)
            && out.log.contains("refusing to install"),
        "{}",
        out.log
    );
    assert!(out.path_lines.is_empty(), "nothing may go on PATH");
    let complete = runner
        .tool_cache()
        .join(format!("keyguard/{VERSION}/{ASSET_TARGET}.complete"));
    assert!(
        !complete.exists(),
        "the cache must not keep a refused asset"
    );
    assert!(!runner
        .tool_cache()
        .join(format!("keyguard/{VERSION}/{ASSET_TARGET}/keyguard"))
        .exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ref_without_a_release_builds_from_source() {
    let (server, requests) = releases::start(HashMap::new()).await;
    let runner = Runner::new();

    // A version tag whose release is missing: a warning, then the build.
    let tag = runner.install(&server, &format!("v{VERSION}"), None).await;
    assert_eq!(tag.code, Some(0), "{}", tag.log);
    assert!(
        tag.log.contains("::warning title=keyguard install::")
            && tag.log.contains("building from source"),
        "{}",
        tag.log
    );
    let built = runner
        .dir
        .path()
        .join(format!("temp/keyguard-source-{VERSION}/bin"));
    assert_eq!(tag.path_lines, vec![built.clone()], "{}", tag.log);
    assert!(version_of(&built).starts_with(&format!("keyguard {VERSION}")));

    // A branch: no download is even tried.
    let asked = requests.lock().unwrap().len();
    let main = runner.install(&server, "main", None).await;
    assert_eq!(main.code, Some(0), "{}", main.log);
    assert!(
        main.log.contains("ref main is not a release"),
        "{}",
        main.log
    );
    assert_eq!(main.path_lines, vec![built]);
    assert_eq!(requests.lock().unwrap().len(), asked);
}

/// An Action tree as the release's tags point to it: install.sh, the
/// workspace version, and action/sha256sums.txt written by the release's
/// own script from `asset`. Returns the tree and its install.sh.
fn pinned_action_tree(asset: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let root = keyguard_tests::repo_root();
    let tree = tempfile::tempdir().unwrap();
    let dist = tree.path().join("dist");
    std::fs::create_dir_all(tree.path().join("action")).unwrap();
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::copy(root.join("Cargo.toml"), tree.path().join("Cargo.toml")).unwrap();
    let script = tree.path().join("action/install.sh");
    std::fs::copy(root.join("action/install.sh"), &script).unwrap();
    std::fs::write(dist.join(asset_name()), asset).unwrap();
    let out = Command::new("bash")
        .arg(root.join("scripts/pin-action-checksums.sh"))
        .arg(&dist)
        .arg(format!("v{VERSION}"))
        .arg(tree.path().join("action/sha256sums.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pins = std::fs::read_to_string(tree.path().join("action/sha256sums.txt")).unwrap();
    assert!(pins.contains(&format!("  {}\n", asset_name())), "{pins}");
    assert!(
        pins.contains(&format!("  keyguard-v{VERSION}-{ASSET_TARGET}/keyguard\n")),
        "{pins}"
    );
    (tree, script)
}

/// A script that says it is keyguard of this version.
fn impostor(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("keyguard");
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho 'keyguard {VERSION} (0000000)'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const COMMIT_REF: &str = "3f1c9a0b7d2e4f6a8c0e1b3d5f7a9c1e3b5d7f90";

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_pinned_action_installs_only_the_bytes_its_tree_pins() {
    let bytes = asset();
    let (_tree, script) = pinned_action_tree(&bytes);
    // The release's own sha256sums.txt is wrong: a pinned tree never reads it.
    let (server, requests) = releases::start(release_of(bytes, |_| "0".repeat(64))).await;
    let runner = Runner::new();

    let first = runner
        .install_from(&script, &server, COMMIT_REF, None)
        .await;
    assert_eq!(first.code, Some(0), "{}", first.log);
    let dir = runner
        .tool_cache()
        .join(format!("keyguard/{VERSION}/{ASSET_TARGET}"));
    assert_eq!(first.path_lines, vec![dir.clone()], "{}", first.log);
    assert!(version_of(&dir).starts_with(&format!("keyguard {VERSION}")));
    assert_eq!(
        *requests.lock().unwrap(),
        vec![format!(
            "/acme/keyguard/releases/download/v{VERSION}/{}",
            asset_name()
        )]
    );

    // A keyguard on PATH that claims the right version is not the pinned
    // binary: ignored, the cached one is used.
    let fake = impostor(&runner.dir.path().join("fake"));
    let out = runner
        .install_from(&script, &server, COMMIT_REF, fake.parent())
        .await;
    assert_eq!(out.code, Some(0), "{}", out.log);
    assert!(out.log.contains("its SHA-256 is not the"), "{}", out.log);
    assert_eq!(out.path_lines, vec![dir.clone()], "{}", out.log);

    // A tool cache someone replaced: ignored and downloaded again.
    impostor(&dir);
    let out = runner
        .install_from(&script, &server, COMMIT_REF, None)
        .await;
    assert_eq!(out.code, Some(0), "{}", out.log);
    assert!(
        out.log.contains("ignoring the tool cache's keyguard"),
        "{}",
        out.log
    );
    assert_eq!(
        std::fs::read(dir.join("keyguard")).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_keyguard")).unwrap()
    );
    assert_eq!(requests.lock().unwrap().len(), 2, "{}", out.log);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_release_asset_is_refused_by_a_pinned_action() {
    let (_tree, script) = pinned_action_tree(&asset());
    // Someone with write access to the release replaced the asset and its
    // line in sha256sums.txt: consistent with each other, not with the pins.
    let other = tempfile::tempdir().unwrap();
    impostor(other.path());
    let tarball = other.path().join("asset.tar.gz");
    assert!(Command::new("tar")
        .args(["-czf", tarball.to_str().unwrap(), "-C"])
        .arg(other.path())
        .arg("keyguard")
        .status()
        .unwrap()
        .success());
    let replaced = std::fs::read(&tarball).unwrap();
    let base = format!("/acme/keyguard/releases/download/v{VERSION}");
    let sums = format!("{}  {}\n", sha256_hex(&replaced), asset_name());
    let (server, _) = releases::start(HashMap::from([
        (format!("{base}/{}", asset_name()), replaced),
        (format!("{base}/sha256sums.txt"), sums.into_bytes()),
    ]))
    .await;
    let runner = Runner::new();

    for ref_ in [COMMIT_REF, &format!("v{VERSION}")] {
        let out = runner.install_from(&script, &server, ref_, None).await;
        assert_eq!(out.code, Some(1), "{ref_}: {}", out.log);
        assert!(
            out.log.contains("checksum mismatch for")
                && out.log.contains("this action pins")
                && out.log.contains("refusing to install"),
            "{ref_}: {}",
            out.log
        );
        assert!(out.path_lines.is_empty(), "nothing may go on PATH");
        assert!(!runner
            .tool_cache()
            .join(format!("keyguard/{VERSION}/{ASSET_TARGET}.complete"))
            .exists());
    }
}

/// A tree with pins trusts nothing weaker: pins without this runner's
/// target build the checkout (no release checksums, no keyguard on PATH
/// trusted by its version), and pins with Windows line ends still pin.
#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_tree_never_falls_back_to_weaker_checks() {
    let bytes = asset();
    let (tree, script) = pinned_action_tree(&bytes);
    let (server, requests) = releases::start(release_of(bytes, |s| s.to_string())).await;
    let runner = Runner::new();
    let pins = tree.path().join("action/sha256sums.txt");
    let original = std::fs::read_to_string(&pins).unwrap();

    std::fs::write(&pins, original.replace('\n', "\r\n")).unwrap();
    let crlf = runner
        .install_from(&script, &server, COMMIT_REF, None)
        .await;
    assert_eq!(crlf.code, Some(0), "{}", crlf.log);
    assert_eq!(requests.lock().unwrap().len(), 1, "{}", crlf.log);

    let other_target = original.replace(ASSET_TARGET, "riscv64gc-unknown-linux-musl");
    std::fs::write(&pins, other_target).unwrap();
    let fake = impostor(&runner.dir.path().join("fake"));
    let out = runner
        .install_from(&script, &server, "v0", fake.parent())
        .await;
    assert!(
        out.log.contains("pins no keyguard")
            && out.log.contains("building this checkout from source"),
        "{}",
        out.log
    );
    assert!(
        !out.log.contains("already on PATH")
            && out
                .path_lines
                .iter()
                .all(|p| !p.starts_with(runner.dir.path().join("fake"))),
        "a keyguard on PATH is not trusted by its version: {}",
        out.log
    );
    assert_eq!(
        requests.lock().unwrap().len(),
        1,
        "neither the release's checksums nor its asset were asked for"
    );
}
