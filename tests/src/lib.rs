//! Real parts for twitter-keyguard's tests and demo: a local control plane
//! (etcd and kube-apiserver built from their Go modules) and helpers to
//! drive it the way a user would.

#![forbid(unsafe_code)]

pub mod conflicts;
pub mod control_plane;
pub mod credential;
pub mod fixtures;
pub mod kube_helpers;
pub mod leaks;
pub mod operator;
pub mod status;
pub mod world;
pub mod x_api;

pub use control_plane::ControlPlane;

/// The repository root, for examples/, crds/ and charts/.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
