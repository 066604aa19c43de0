//! TLS for every listener (rustls, through tokio-rustls): a certificate and key from PEM
//! files, or a self-signed certificate generated on first start and kept beside the data
//! (rcgen), whose SHA-256 fingerprint is printed so clients can pin or trust it
//! (`aws --ca-bundle cert.pem`, `AWS_CA_BUNDLE`).
//!
//! ALPN speaks HTTP/1.1 and HTTP/2 and prefers HTTP/1.1: a client offering both (the Rust SDK,
//! reqwest) gets HTTP/1.1, one connection per concurrent request, so TLS and framing spread
//! over every core; one multiplexed HTTP/2 connection is read and decrypted by one task, which
//! cost the 4-client PutRecords benchmark a third of its throughput on two cores
//! (bench/README.md, "Identities"). A client offering only HTTP/2 (Java SDK v2's
//! SubscribeToShard) gets HTTP/2.
//!
//! The cipher suites come from rustls's ring provider, not aws-lc-rs: on the development VM
//! (AMD EPYC with VAES and VPCLMULQDQ but not AVX-512) ring's AES-GCM runs its VAES/AVX2 code,
//! aws-lc's the older AES-NI code at under half the speed; in a profile of the signed 4-client
//! PutRecords load, decrypting 400 KB bodies took 287 ms of server CPU per million records with
//! aws-lc-rs and the clients' ring encrypted them in 121. SHA-256 is the same speed in both
//! (and in `sha2`): 1.59 GB/s with SHA-NI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The application protocols, most preferred first (the server's order decides).
const ALPN: [&[u8]; 2] = [b"http/1.1", b"h2"];

/// A server's TLS: the acceptor and what to tell clients about its certificate.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate's DER, as `AA:BB:…`.
    pub fingerprint: String,
    /// The certificate file clients can trust (`--ca-bundle`).
    pub cert_path: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .field("cert_path", &self.cert_path)
            .finish()
    }
}

impl Tls {
    /// From a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| read_err(cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_err(cert, &e))?;
        let Some(leaf) = certs.first() else {
            return Err(TlsError::NoCertificate {
                path: cert.to_owned(),
            });
        };
        let fingerprint = fingerprint(leaf);
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_err(key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            fingerprint,
            cert_path: cert.to_owned(),
        })
    }

    /// The self-signed certificate in `dir` (`cert.pem`, `key.pem`), generated for `names`
    /// (DNS names or IP addresses; `localhost` and `127.0.0.1` always) if there is none yet.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.exists() || !key.exists() {
            let mut all = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            all.extend(
                names
                    .iter()
                    .filter(|n| !all.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            let generated = rcgen::generate_simple_self_signed(all)
                .map_err(|e| TlsError::Generate(e.to_string()))?;
            let write = |path: &Path, text: String, private: bool| {
                let r = if private {
                    millrace_common::durable::write_private_file(path, text.as_bytes())
                } else {
                    millrace_common::durable::write_file(path, text.as_bytes())
                };
                r.map_err(|source| TlsError::Write {
                    path: path.to_owned(),
                    source,
                })
            };
            write(&key, generated.signing_key.serialize_pem(), true)?;
            write(&cert, generated.cert.pem(), false)?;
        }
        Self::from_pem_files(&cert, &key)
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

fn fingerprint(cert: &CertificateDer) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol a client offering `offered` gets from `tls`.
    async fn negotiated(tls: &Tls, offered: &[&[u8]]) -> Option<Vec<u8>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&tls.cert_path).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let (client, server) = tokio::io::duplex(64 << 10);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let (client, server) = tokio::join!(
            connector.connect(name, client),
            tls.acceptor().accept(server)
        );
        let (client, server) = (client.unwrap(), server.unwrap());
        let agreed = client.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        assert_eq!(
            agreed,
            server.get_ref().1.alpn_protocol().map(|p| p.to_vec())
        );
        agreed
    }

    #[tokio::test]
    async fn a_client_offering_both_gets_http1_and_an_http2_only_client_gets_http2() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::self_signed(dir.path(), &[]).unwrap();
        let both: [&[u8]; 2] = [b"h2", b"http/1.1"];
        assert_eq!(
            negotiated(&tls, &both).await.as_deref(),
            Some(&b"http/1.1"[..])
        );
        assert_eq!(
            negotiated(&tls, &[b"h2"]).await.as_deref(),
            Some(&b"h2"[..])
        );
        assert_eq!(negotiated(&tls, &[]).await, None);
    }
}
