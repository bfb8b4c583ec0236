//! Extra certificate authorities for analysis endpoints: a Prometheus or a webhook served
//! with a certificate of a cluster CA, which the platform's root certificates do not know.
//! The bundle is read once, at start (`--analysis-ca-bundle`); a file that cannot serve
//! stops the start with a message naming it, rather than every measurement failing later.

use std::path::{Path, PathBuf};

/// The CA certificates of a PEM file, checked to be usable as roots.
#[derive(Clone, Debug)]
pub struct CaBundle {
    path: PathBuf,
    certificates: Vec<reqwest::Certificate>,
}

/// Why a CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("cannot read the analysis CA bundle {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the analysis CA bundle {path} holds no PEM certificate (a block starting with -----BEGIN CERTIFICATE-----)"
    )]
    Empty { path: PathBuf },
    #[error("the analysis CA bundle {path} is not a valid PEM certificate bundle: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
}

impl CaBundle {
    /// Reads `path` and checks that every certificate in it can be a root.
    pub fn load(path: &Path) -> Result<CaBundle, CaBundleError> {
        let pem = std::fs::read(path).map_err(|source| CaBundleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |source| CaBundleError::Invalid {
            path: path.to_path_buf(),
            source,
        };
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(invalid)?;
        if certificates.is_empty() {
            return Err(CaBundleError::Empty {
                path: path.to_path_buf(),
            });
        }
        // The TLS library parses roots only when a client is built: build one now, so that a
        // certificate it refuses stops the start and not the first measurement.
        certificates
            .iter()
            .cloned()
            .fold(
                reqwest::Client::builder().tls_built_in_root_certs(false),
                reqwest::ClientBuilder::add_root_certificate,
            )
            .build()
            .map_err(invalid)?;
        Ok(CaBundle {
            path: path.to_path_buf(),
            certificates,
        })
    }

    /// `load` for a command-line value: clap shows the error and the operator does not start.
    pub fn from_arg(path: &str) -> Result<CaBundle, String> {
        CaBundle::load(Path::new(path)).map_err(|e| e.to_string())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn certificates(&self) -> &[reqwest::Certificate] {
        &self.certificates
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;
    use crate::analysis::Measurer;
    use crate::analysis::template::tests::facts;
    use crate::api::{Metric, Outcome, WebhookMetric};

    /// The test CA and the server certificate it signed: `testdata/make-certs.sh`.
    fn testdata(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/analysis/testdata")
            .join(file)
    }

    /// A file in the temporary directory holding `contents`, unique to this test run.
    fn file_with(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("weir-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("a temporary file");
        path
    }

    #[test]
    fn a_bundle_that_cannot_serve_is_refused_with_its_path_and_why() {
        let missing = Path::new("/nonexistent/ca.pem");
        let error = CaBundle::load(missing).unwrap_err().to_string();
        assert!(
            error.starts_with("cannot read the analysis CA bundle /nonexistent/ca.pem: "),
            "{error}"
        );
        let no_pem = file_with("no-pem.txt", b"not a certificate\n");
        let error = CaBundle::load(&no_pem).unwrap_err().to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        let broken = b"-----BEGIN CERTIFICATE-----\n%%%not base64%%%\n-----END CERTIFICATE-----\n";
        let error = CaBundle::load(&file_with("broken.pem", broken))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not a valid PEM certificate bundle"),
            "{error}"
        );
        let not_x509 = b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
        let error = CaBundle::load(&file_with("not-x509.pem", not_x509))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not a valid PEM certificate bundle"),
            "{error}"
        );
    }

    #[test]
    fn a_bundle_of_certificates_loads() {
        let bundle = CaBundle::load(&testdata("ca.pem")).expect("the test CA loads");
        assert_eq!(bundle.certificates().len(), 1);
        assert_eq!(bundle.path(), testdata("ca.pem"));
    }

    /// An HTTPS server on loopback with the certificate the test CA signed, answering every
    /// request with 200 and counting them.
    async fn https_webhook() -> (SocketAddr, Arc<AtomicUsize>) {
        let certificates = CertificateDer::pem_file_iter(testdata("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("server.pem holds certificates");
        let key = PrivateKeyDer::from_pem_file(testdata("server.key")).expect("server.key");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("the server certificate and its key");
        let listener = TlsListener {
            tcp: TcpListener::bind("127.0.0.1:0").await.expect("a port"),
            tls: TlsAcceptor::from(Arc::new(config)),
        };
        let address = listener.tcp.local_addr().expect("an address");
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "{}"
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (address, calls)
    }

    struct TlsListener {
        tcp: TcpListener,
        tls: TlsAcceptor,
    }

    impl axum::serve::Listener for TlsListener {
        type Io = tokio_rustls::server::TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                let Ok((stream, address)) = self.tcp.accept().await else {
                    continue;
                };
                // A client that does not trust the certificate ends the handshake.
                if let Ok(tls) = self.tls.accept(stream).await {
                    return (tls, address);
                }
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            self.tcp.local_addr()
        }
    }

    #[tokio::test]
    async fn a_webhook_signed_by_a_cluster_ca_is_reached_only_with_its_bundle() {
        let (address, calls) = https_webhook().await;
        let metric = Metric {
            name: "smoke".into(),
            webhook: Some(WebhookMetric {
                url: format!("https://{address}/run"),
                timeout_seconds: Some(10),
            }),
            ..Metric::default()
        };
        let at = Time(Default::default());

        let platform_roots_only = Measurer::new(None);
        let refused = platform_roots_only
            .measure(&metric, &facts(), at.clone())
            .await;
        assert_eq!(refused.outcome, Outcome::Inconclusive, "{refused:?}");
        let message = refused.message.unwrap_or_default();
        assert!(message.contains("certificate"), "{message}");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "no request got through");

        let bundle = CaBundle::load(&testdata("ca.pem")).expect("the test CA");
        let trusting = Measurer::new(None).with_ca_bundle(Some(&bundle));
        let reached = trusting.measure(&metric, &facts(), at).await;
        assert_eq!(reached.outcome, Outcome::Passed, "{reached:?}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the webhook was called once"
        );
    }
}
