//! The X API behind TLS signed by a private CA, as a corporate
//! TLS-inspecting proxy presents it: refused with the compiled-in roots,
//! trusted once the CA is given (`SSL_CERT_FILE` or `SSL_CERT_DIR`, which
//! the chart's `caBundle` sets).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use keyguard_credentials::SecretValue;
use keyguard_operator::xapi::{extra_roots, XApi, XApiClient};
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tokio::net::{TcpListener, TcpStream};

/// A TLS front on a loopback port for `backend` (host:port), with a leaf
/// for 127.0.0.1 signed by a fresh CA; returns its https URL and the CA.
async fn tls_front(backend: String) -> (String, String) {
    tls_front_for(backend, &["localhost"]).await
}

/// As [`tls_front`], with a leaf for `names` (e.g. `api.twitter.com`, for
/// a client that only talks to X's own host) besides 127.0.0.1.
pub(crate) async fn tls_front_for(backend: String, names: &[&str]) -> (String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: with rcgen's one default name for both, OpenSSL
    // (Python's clients) takes the leaf for a self-signed certificate.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keyguard test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let common_name = names.first().cloned().unwrap_or_default();
    let mut leaf = CertificateParams::new(names).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, common_name);
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (url, ca.pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_only_when_given() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    let backend = x.base_url().trim_start_matches("http://").to_string();
    let (url, ca) = tls_front(backend).await;
    let (key, secret) = (
        SecretValue::new(app.api_key.as_bytes().to_vec()),
        SecretValue::new(app.api_key_secret.as_bytes().to_vec()),
    );
    let timeout = Duration::from_secs(10);

    let compiled_in = XApiClient::new(&url, timeout).unwrap();
    let refused = compiled_in.mint_bearer(&key, &secret).await.unwrap_err();
    assert!(
        refused.to_string().to_lowercase().contains("certificate")
            || refused.to_string().contains("error sending request"),
        "{refused}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corp-ca.pem");
    std::fs::write(&file, &ca).unwrap();
    for (what, roots) in [
        (
            "SSL_CERT_FILE",
            extra_roots(Some(file.as_os_str()), None).unwrap(),
        ),
        (
            "SSL_CERT_DIR",
            extra_roots(None, Some(dir.path().as_os_str())).unwrap(),
        ),
    ] {
        let client = XApiClient::with_roots(&url, timeout, "keyguard-test", &roots).unwrap();
        let token = client
            .mint_bearer(&key, &secret)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            x.current_bearer(&app.api_key).as_deref(),
            Some(String::from_utf8_lossy(token.expose()).as_ref()),
            "{what}"
        );
    }
    let missing = extra_roots(Some(dir.path().join("nope.pem").as_os_str()), None).unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
}
