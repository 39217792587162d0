//! Builds and runs the local control plane for the demo and for people.
//!
//! `keyguard-control-plane build` builds etcd and kube-apiserver into the cache (all the demo
//! needs); `keyguard-control-plane tools` builds what only the tests use (helm, actionlint,
//! promtool); `keyguard-control-plane up --kubeconfig FILE` starts the control plane, writes an
//! admin kubeconfig to FILE and runs until interrupted.

use std::path::PathBuf;

use anyhow::Context;
use keyguard_tests::control_plane::{
    ensure_actionlint, ensure_binaries, ensure_helm, ensure_promtool, ControlPlane,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build") => {
            let b = ensure_binaries()?;
            println!("{}\n{}", b.etcd.display(), b.kube_apiserver.display());
        }
        Some("tools") => {
            println!("{}", ensure_helm()?.display());
            println!("{}", ensure_actionlint()?.display());
            println!("{}", ensure_promtool()?.display());
        }
        Some("up") => {
            let out = match (args.get(1).map(String::as_str), args.get(2)) {
                (Some("--kubeconfig"), Some(path)) => PathBuf::from(path),
                _ => anyhow::bail!("usage: keyguard-control-plane up --kubeconfig FILE"),
            };
            let started = std::time::Instant::now();
            let cp = ControlPlane::start().await?;
            let ready_in = started.elapsed();
            std::fs::copy(cp.kubeconfig(), &out)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "control plane ready at {} in {:.1}s (kubeconfig {}, logs in {}); Ctrl-C stops it",
                cp.server(),
                ready_in.as_secs_f64(),
                out.display(),
                cp.dir().display()
            );
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            drop(cp);
            let _ = std::fs::remove_file(&out);
        }
        _ => anyhow::bail!("usage: keyguard-control-plane build | tools | up --kubeconfig FILE"),
    }
    Ok(())
}
