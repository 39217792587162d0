//! A real, local Kubernetes control plane for tests and the demo: etcd and
//! kube-apiserver built from their Go modules (pinned in
//! `tests/control-plane/go.mod` for the newest supported Kubernetes and
//! `kubernetes-1.34.mod` for the oldest), started on free loopback ports with a fresh
//! data dir, client-certificate auth and RBAC authorization.
//!
//! Dropping a [`ControlPlane`] stops both processes; if the test process is
//! killed outright, the processes notice they were orphaned and exit (see
//! `tests/control-plane/internal/orphan`).

use std::fs::{self, File};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// A supported Kubernetes release the control plane can be built at: its
/// version and the go.mod (in `tests/control-plane`) that pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kubernetes {
    pub version: &'static str,
    /// The module file, passed to go as `-modfile` (its go.sum sits next to
    /// it with the `.sum` extension).
    pub modfile: &'static str,
}

/// The newest Kubernetes served here: the default for every test.
pub const NEWEST: Kubernetes = Kubernetes {
    version: "v1.37.2",
    modfile: "go.mod",
};

/// The oldest supported Kubernetes; the k8s-openapi feature matches it.
/// `KEYGUARD_KUBERNETES=oldest` runs the tests against it.
pub const OLDEST: Kubernetes = Kubernetes {
    version: "v1.34.4",
    modfile: "kubernetes-1.34.mod",
};

/// The release the tests use: `KEYGUARD_KUBERNETES` = `newest` (default)
/// or `oldest`.
pub fn kubernetes() -> Kubernetes {
    match std::env::var("KEYGUARD_KUBERNETES").as_deref() {
        Ok("oldest") => OLDEST,
        Ok("" | "newest") | Err(_) => NEWEST,
        Ok(other) => panic!("KEYGUARD_KUBERNETES must be newest or oldest, not {other:?}"),
    }
}

/// How long etcd plus kube-apiserver may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Errors while building or running the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Go is needed to build the local control plane (etcd and kube-apiserver from their Go modules) \
         but `go` was not found on PATH: install Go 1.24 or newer (e.g. from https://go.dev/dl or your \
         package manager) and run again"
    )]
    GoMissing,
    #[error("building the control plane failed ({what}); the output of `go build` was:\n{output}")]
    Build { what: String, output: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    #[error(
        "{component} exited before the control plane was ready ({status}); last log lines:\n{log}"
    )]
    Exited {
        component: &'static str,
        status: String,
        log: String,
    },
    #[error("the control plane was not ready within {0:?}; kube-apiserver log tail:\n{1}")]
    NotReady(Duration, String),
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("kubeconfig: {0}")]
    InferConfig(#[from] kube::config::InferConfigError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Paths of the built control-plane programs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
}

/// The Go module that pins etcd and kube-apiserver.
pub fn go_module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane")
}

/// Where built binaries are cached: `$KEYGUARD_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/twitter-keyguard`, else `~/.cache/twitter-keyguard`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEYGUARD_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("twitter-keyguard")
}

/// A hash of everything that decides what the build produces: the module
/// file with its go.sum, and our Go sources. A change to any of them
/// rebuilds.
fn source_hash(module: &Path, modfile: &str) -> Result<String> {
    let mut files = vec![
        module.join(modfile),
        module.join(modfile.replace(".mod", ".sum")),
    ];
    collect_sources(module, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(f.strip_prefix(module).unwrap().to_string_lossy().as_bytes());
        hasher.update(fs::read(&f).map_err(io(format!("reading {}", f.display())))?);
    }
    Ok(hex::encode(&hasher.finalize()[..8]))
}

fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
        let path = entry.map_err(io("listing the Go module"))?.path();
        if path.is_dir() {
            collect_sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "go") {
            out.push(path);
        }
    }
    Ok(())
}

/// Builds `packages` of the Go module at `module` once per content hash
/// into `<cache>/<label>-<hash>/bin` and returns that directory.
/// Concurrent callers (parallel tests) wait on a file lock instead of
/// building twice.
pub fn go_build_cached(
    module: &Path,
    label: &str,
    packages: &[&str],
    ldflags: &str,
) -> Result<PathBuf> {
    go_build_cached_with(module, "go.mod", label, packages, ldflags)
}

/// [`go_build_cached`] with another module file than go.mod (`-modfile`).
pub fn go_build_cached_with(
    module: &Path,
    modfile: &str,
    label: &str,
    packages: &[&str],
    ldflags: &str,
) -> Result<PathBuf> {
    let dir = cache_root().join(label).join(format!(
        "{}-{}",
        source_hash(module, modfile)?,
        &hex::encode(Sha256::digest(ldflags.as_bytes()))[..8]
    ));
    let bin = dir.join("bin");
    let done = dir.join("complete");
    if done.exists() {
        return Ok(bin);
    }
    fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let lock = File::create(dir.join("lock")).map_err(io("creating the build lock"))?;
    lock.lock().map_err(io("taking the build lock"))?;
    if done.exists() {
        return Ok(bin);
    }
    if Command::new("go").arg("version").output().is_err() {
        return Err(Error::GoMissing);
    }
    eprintln!(
        "building {} from Go modules into {} (once; later runs reuse it)",
        packages.join(" "),
        bin.display()
    );
    let output = Command::new("go")
        .args([
            "build",
            "-trimpath",
            "-modfile",
            modfile,
            "-ldflags",
            ldflags,
            "-o",
        ])
        .arg(format!("{}/", bin.display()))
        .args(packages)
        .current_dir(module)
        .env("GOFLAGS", "-mod=readonly -buildvcs=false")
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(io("running go build"))?;
    if !output.status.success() {
        return Err(Error::Build {
            what: format!("go build {} in {}", packages.join(" "), module.display()),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    File::create(&done).map_err(io("marking the build complete"))?;
    Ok(bin)
}

/// Builds etcd and kube-apiserver (once per pinned version) and returns
/// their paths.
pub fn ensure_binaries() -> Result<Binaries> {
    let k = kubernetes();
    let bin = go_build_cached_with(
        &go_module_dir(),
        k.modfile,
        &format!("control-plane-{}", k.version),
        &["./cmd/..."],
        &version_ldflags(),
    )?;
    Ok(Binaries {
        etcd: bin.join("etcd"),
        kube_apiserver: bin.join("kube-apiserver"),
    })
}

/// helm, built from `helm.sh/helm/v3` (pinned in `tests/helm/go.mod`), with
/// its default Kubernetes version (for `helm template` and `lint`, which
/// have no cluster to ask) set to the newest supported one.
pub fn ensure_helm() -> Result<PathBuf> {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("helm");
    let v = NEWEST.version.trim_start_matches('v');
    let mut parts = v.split('.');
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    let ldflags = format!(
        "-X helm.sh/helm/v3/internal/version.version=v3.18.6 \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={major} -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor} \
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={major} -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}"
    );
    Ok(go_build_cached(&module, "helm", &["helm.sh/helm/v3/cmd/helm"], &ldflags)?.join("helm"))
}

/// actionlint, built from `github.com/rhysd/actionlint` (pinned in
/// `tests/actionlint/go.mod`), for the workflow checks.
pub fn ensure_actionlint() -> Result<PathBuf> {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("actionlint");
    let bin = go_build_cached(
        &module,
        "actionlint-v1.7.12",
        &["github.com/rhysd/actionlint/cmd/actionlint"],
        "-X github.com/rhysd/actionlint.version=v1.7.12",
    )?;
    Ok(bin.join("actionlint"))
}

/// promtool, built from `github.com/prometheus/prometheus` (pinned in
/// `tests/promtool/go.mod`), to test the chart's alerting rules.
pub fn ensure_promtool() -> Result<PathBuf> {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("promtool");
    let bin = go_build_cached(
        &module,
        "promtool-v0.316.0",
        &["github.com/prometheus/prometheus/cmd/promtool"],
        "",
    )?;
    Ok(bin.join("promtool"))
}

/// Stamps the Kubernetes version into the binaries, as Kubernetes' own
/// release build does; without it they report `v0.0.0-master`, which
/// kubectl cannot parse.
pub fn version_ldflags() -> String {
    let v = kubernetes().version;
    let mut parts = v.trim_start_matches('v').split('.');
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    let pkg = "k8s.io/component-base/version";
    format!(
        "-X {pkg}.gitVersion={v} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor} \
         -X {pkg}.gitTreeState=clean -X {pkg}.buildDate=1970-01-01T00:00:00Z"
    )
}

/// A free TCP port on 127.0.0.1. The port is released before use, so a
/// caller retries if another process takes it first.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

/// A running etcd + kube-apiserver pair.
#[derive(Debug)]
pub struct ControlPlane {
    dir: tempfile::TempDir,
    etcd: Child,
    apiserver: Child,
    port: u16,
    kubeconfig: PathBuf,
    binaries: Binaries,
    etcd_ports: (u16, u16),
}

struct Pki {
    ca_pem: String,
    serving_cert: String,
    serving_key: String,
    admin_cert: String,
    admin_key: String,
    sa_private: String,
    sa_public: String,
}

fn generate_pki() -> Result<Pki> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keyguard-test-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let serving_key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &ca)?;

    let admin_key = KeyPair::generate()?;
    let mut admin = CertificateParams::new(Vec::<String>::new())?;
    admin
        .distinguished_name
        .push(DnType::CommonName, "keyguard-admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &ca)?;

    let sa = KeyPair::generate()?;
    Ok(Pki {
        ca_pem: ca.pem(),
        serving_cert: serving_cert.pem(),
        serving_key: serving_key.serialize_pem(),
        admin_cert: admin_cert.pem(),
        admin_key: admin_key.serialize_pem(),
        sa_private: sa.serialize_pem(),
        sa_public: sa.public_key_pem(),
    })
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).map_err(io(format!("writing {}", path.display())))
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Child> {
    // Appended: a restarted process keeps the earlier log.
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(format!("creating {}", log.display())))?;
    let err = out.try_clone().map_err(io("duplicating a log handle"))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("KEYGUARD_EXIT_WITH_PARENT", "1")
        // Own process group: a Ctrl-C meant for the test runner is handled
        // by our Drop, not delivered half-way to the children.
        .process_group(0);
    cmd.spawn()
        .map_err(io(format!("starting {:?}", cmd.get_program())))
}

fn etcd_command(binaries: &Binaries, root: &Path, client: u16, peer: u16) -> Command {
    let etcd_url = format!("http://127.0.0.1:{client}");
    let mut etcd = Command::new(&binaries.etcd);
    etcd.arg(format!("--data-dir={}", root.join("etcd").display()))
        .arg(format!("--listen-client-urls={etcd_url}"))
        .arg(format!("--advertise-client-urls={etcd_url}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
        // Tests throw their data away: skip fsync for speed.
        .arg("--unsafe-no-fsync");
    etcd
}

fn apiserver_command(binaries: &Binaries, root: &Path, etcd_url: &str, port: u16) -> Command {
    let mut apiserver = Command::new(&binaries.kube_apiserver);
    let p = |name: &str| root.join(name).display().to_string();
    apiserver
        .arg(format!("--etcd-servers={etcd_url}"))
        .arg(format!("--cert-dir={}", p("certs")))
        .arg(format!("--tls-cert-file={}", p("apiserver.crt")))
        .arg(format!("--tls-private-key-file={}", p("apiserver.key")))
        .arg(format!("--client-ca-file={}", p("ca.crt")))
        .arg(format!("--secure-port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg("--authorization-mode=RBAC")
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--allow-privileged=true")
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!("--service-account-key-file={}", p("sa.pub")))
        .arg(format!(
            "--service-account-signing-key-file={}",
            p("sa.key")
        ))
        .arg("--endpoint-reconciler-type=none");
    apiserver
}

fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl ControlPlane {
    /// Builds (once) and starts a control plane, waiting until it serves.
    pub async fn start() -> Result<Self> {
        let binaries = tokio::task::spawn_blocking(ensure_binaries)
            .await
            .expect("build task panicked")?;
        // A port can be taken between choosing and binding it; retry.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_with(&binaries).await {
                Ok(cp) => return Ok(cp),
                Err(e @ Error::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap())
    }

    async fn start_with(binaries: &Binaries) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keyguard-control-plane-")
            .tempdir()
            .map_err(io("creating the control plane's directory"))?;
        let root = dir.path();
        let pki = generate_pki()?;
        for (name, contents) in [
            ("ca.crt", &pki.ca_pem),
            ("apiserver.crt", &pki.serving_cert),
            ("apiserver.key", &pki.serving_key),
            ("admin.crt", &pki.admin_cert),
            ("admin.key", &pki.admin_key),
            ("sa.key", &pki.sa_private),
            ("sa.pub", &pki.sa_public),
        ] {
            write(&root.join(name), contents)?;
        }

        let etcd_client = free_port()?;
        let etcd_peer = free_port()?;
        let port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");

        let etcd = spawn_logged(
            etcd_command(binaries, root, etcd_client, etcd_peer),
            &root.join("etcd.log"),
        )?;
        let apiserver = spawn_logged(
            apiserver_command(binaries, root, &etcd_url, port),
            &root.join("kube-apiserver.log"),
        )?;
        let mut cp = ControlPlane {
            kubeconfig: root.join("kubeconfig"),
            etcd,
            apiserver,
            port,
            dir,
            binaries: binaries.clone(),
            etcd_ports: (etcd_client, etcd_peer),
        };
        write(&cp.kubeconfig, &cp.kubeconfig_yaml())?;
        cp.wait_ready().await?;
        Ok(cp)
    }

    fn kubeconfig_yaml(&self) -> String {
        let p = |name: &str| self.dir.path().join(name).display().to_string();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: keyguard-local
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: keyguard-admin
  user:
    client-certificate: {crt}
    client-key: {key}
contexts:
- name: keyguard-local
  context: {{cluster: keyguard-local, user: keyguard-admin, namespace: default}}
current-context: keyguard-local
",
            port = self.port,
            ca = p("ca.crt"),
            crt = p("admin.crt"),
            key = p("admin.key"),
        )
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let client = self.client().await?;
        loop {
            for (component, child, log) in [
                ("etcd", &mut self.etcd, "etcd.log"),
                ("kube-apiserver", &mut self.apiserver, "kube-apiserver.log"),
            ] {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::Exited {
                        component,
                        status: status.to_string(),
                        log: tail(&self.dir.path().join(log), 30),
                    });
                }
            }
            let req = http::Request::get("/readyz").body(Vec::new()).unwrap();
            if let Ok(text) = client.request_text(req).await {
                if text.trim() == "ok" {
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady(
                    READY_TIMEOUT,
                    tail(&self.dir.path().join("kube-apiserver.log"), 30),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The apiserver's URL.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig file for an admin (`system:masters`), for kubectl and helm.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The control plane's working directory (certificates, logs, etcd data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Client configuration for the admin.
    pub async fn admin_config(&self) -> Result<Config> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)
    }

    /// A client with admin rights.
    pub async fn client(&self) -> Result<Client> {
        Ok(Client::try_from(self.admin_config().await?)?)
    }

    /// A client that impersonates `system:serviceaccount:<namespace>:<name>`,
    /// so RBAC is checked exactly as for that ServiceAccount.
    pub async fn impersonating(&self, namespace: &str, name: &str) -> Result<Client> {
        let mut config = self.admin_config().await?;
        config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
        config.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_string(),
        ]);
        Ok(Client::try_from(config)?)
    }

    /// A real token of a ServiceAccount (which must exist) from the
    /// TokenRequest API, valid for an hour.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client().await?, namespace);
        let request = TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                audiences: vec!["https://kubernetes.default.svc.cluster.local".to_string()],
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        Ok(api
            .create_token_request(name, &PostParams::default(), &request)
            .await?
            .status
            .map(|s| s.token)
            .unwrap_or_default())
    }

    /// A kubeconfig that authenticates as a ServiceAccount with a real
    /// token from the TokenRequest API (the ServiceAccount must exist), so a
    /// program such as the operator runs with exactly that identity.
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        let token = self.service_account_token(namespace, name).await?;
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{namespace}-{name}"));
        write(
            &path,
            &format!(
                "apiVersion: v1
kind: Config
clusters:
- name: keyguard-local
  cluster: {{server: '{server}', certificate-authority: '{ca}'}}
users:
- name: {name}
  user: {{token: '{token}'}}
contexts:
- name: keyguard-local
  context: {{cluster: keyguard-local, user: {name}, namespace: {namespace}}}
current-context: keyguard-local
",
                server = self.server(),
                ca = self.dir.path().join("ca.crt").display(),
            ),
        )?;
        Ok(path)
    }

    /// `kubectl` pointed at this control plane as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            // Discovery is cached per host:port; ports are reused across
            // control planes, so each one needs its own cache.
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"));
        cmd
    }

    /// Stops etcd and kube-apiserver (SIGKILL), waits `down`, and starts
    /// them again on the same ports and data: what a client sees when the
    /// control plane restarts or its node reboots.
    pub async fn restart(&mut self, down: Duration) -> Result<()> {
        self.stop();
        tokio::time::sleep(down).await;
        let root = self.dir.path().to_path_buf();
        let (etcd_client, etcd_peer) = self.etcd_ports;
        self.etcd = spawn_logged(
            etcd_command(&self.binaries, &root, etcd_client, etcd_peer),
            &root.join("etcd.log"),
        )?;
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        self.apiserver = spawn_logged(
            apiserver_command(&self.binaries, &root, &etcd_url, self.port),
            &root.join("kube-apiserver.log"),
        )?;
        self.wait_ready().await
    }

    /// Stops both processes; also done on drop.
    pub fn stop(&mut self) {
        for child in [&mut self.apiserver, &mut self.etcd] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}
