//! Puts the git revision into `--version` (`KEYGUARD_REVISION` overrides
//! it, for builds outside a checkout such as the release workflow's).

fn main() {
    println!("cargo:rerun-if-env-changed=KEYGUARD_REVISION");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let revision = std::env::var("KEYGUARD_REVISION").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let revision = revision.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KEYGUARD_REVISION={revision}");
}
