//! Whom a client trusts, and when it refuses to talk at all.
//!
//! A client of ravsock sends its token with every request, so:
//! - `https://` servers are checked against the system's CAs, or against only the CA given
//!   with `--ca-cert` (a private CA, like curl's `--cacert`);
//! - a plain `http://` URL is accepted for a loopback host only; anywhere else the token would
//!   cross the network in clear text, so it is refused unless the user says `--insecure`.
//!
//! The HTTP client and ravftp's FTPS use rustls with ring (the provider already in the tree
//! for libunftp, so there is one). The socket.io client (rust_socketio) can only use native-tls
//! (OpenSSL), so it is given the same CA there.

use crate::error::{Error, Result};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// What a client trusts and whether it may send its token in clear text.
#[derive(Clone, Default)]
pub struct Trust {
    /// The certificates of `--ca-cert`'s private CA.
    ca: Option<Arc<Vec<CertificateDer<'static>>>>,
    insecure: bool,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("ca_certs", &self.ca.as_ref().map(|ca| ca.len()))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Trust {
    /// The system's CAs; plain HTTP only to a loopback host.
    pub fn system() -> Trust {
        Trust::default()
    }

    /// Only the CA certificates in the PEM file `path` (a private CA).
    pub fn ca_file(path: &Path) -> Result<Trust> {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Trust(format!("cannot read the CA certificate {}: {e}", path.display())))?;
        Trust::ca_pem(&pem).map_err(|e| match e {
            Error::Trust(why) => Error::Trust(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// Only the CA certificates in `pem`.
    pub fn ca_pem(pem: &[u8]) -> Result<Trust> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Trust(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Trust("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
        Ok(Trust { ca: Some(Arc::new(certs)), insecure: false })
    }

    /// With `insecure`, plain `http://` is allowed to any host (a network the user trusts).
    pub fn insecure(self, insecure: bool) -> Trust {
        Trust { insecure, ..self }
    }

    /// The trust of the usual options: `--ca-cert` (or none) and `--insecure`.
    pub fn from_options(ca_cert: Option<&Path>, insecure: bool) -> Result<Trust> {
        let trust = match ca_cert {
            Some(path) => Trust::ca_file(path)?,
            None => Trust::system(),
        };
        Ok(trust.insecure(insecure))
    }

    /// Whether the client may talk to `url` at all: `https://` always, `http://` to a loopback
    /// host or with [`Trust::insecure`].
    pub fn check(&self, url: &str) -> Result<()> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::Trust(format!("`{url}` is not a URL: write it as https://host:port")))?;
        match scheme.to_ascii_lowercase().as_str() {
            "https" => Ok(()),
            "http" if self.insecure || is_loopback(&host_of(rest)) => Ok(()),
            "http" => Err(Error::Trust(format!(
                "refusing to send the token in clear text to {url}: use https://, or pass --insecure \
                 if the network to that host is one you trust"
            ))),
            other => Err(Error::Trust(format!("`{url}`: the scheme must be https or http, not `{other}`"))),
        }
    }

    /// The rustls client configuration: the private CA only, or the system's CAs.
    pub fn rustls(&self) -> Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Trust(format!("TLS set-up: {e}")))?;
        let config = match &self.ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in ca.iter() {
                    roots
                        .add(cert.clone())
                        .map_err(|e| Error::Trust(format!("the CA certificate cannot be used: {e}")))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => {
                let verifier = rustls_platform_verifier::Verifier::new(provider)
                    .map_err(|e| Error::Trust(format!("cannot load the system's CA certificates: {e}")))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
            }
        };
        Ok(Arc::new(config))
    }

    /// An HTTP client that trusts what this does (reqwest is built with rustls and no crypto
    /// provider of its own, so a bare `reqwest::Client::new()` panics: build clients here).
    pub fn reqwest(&self) -> Result<reqwest::Client> {
        self.http_client(&*self.rustls()?)
    }

    /// An HTTP client with the TLS configuration `tls` (from [`Trust::rustls`]).
    pub fn http_client(&self, tls: &rustls::ClientConfig) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .build()
            .map_err(|e| Error::Trust(format!("TLS set-up: {e}")))
    }

    /// The socket.io client's TLS connector: `None` keeps its default (the system's CAs).
    pub fn socket_tls(&self) -> Result<Option<native_tls::TlsConnector>> {
        let Some(ca) = &self.ca else { return Ok(None) };
        let mut builder = native_tls::TlsConnector::builder();
        builder.disable_built_in_roots(true);
        for cert in ca.iter() {
            let cert = native_tls::Certificate::from_der(cert)
                .map_err(|e| Error::Trust(format!("the CA certificate cannot be used: {e}")))?;
            builder.add_root_certificate(cert);
        }
        builder.build().map(Some).map_err(|e| Error::Trust(format!("TLS set-up: {e}")))
    }
}

/// The host of `rest`, the part of a URL after `scheme://`.
fn host_of(rest: &str) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or("").to_string();
    }
    authority.split(':').next().unwrap_or("").to_ascii_lowercase()
}

/// `localhost` or a loopback address (127.0.0.0/8, ::1).
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the chain of `error` holds a refused certificate, and its reason.
pub(crate) fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(inner) = cause {
        if let Some(rustls::Error::InvalidCertificate(why)) = inner.downcast_ref::<rustls::Error>() {
            return Some(format!("{why:?}"));
        }
        // An io::Error's `source` skips the error it wraps, and hyper-rustls wraps tokio-rustls's
        // io::Error (which wraps the rustls error) in another one: look inside each.
        cause = match inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => inner.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_insecure() {
        let trust = Trust::system();
        for url in
            ["http://127.0.0.1:9999", "http://localhost:1/x", "http://[::1]:80", "http://127.8.9.1", "https://x.org"]
        {
            assert!(trust.check(url).is_ok(), "{url}");
        }
        for url in
            ["http://10.0.0.2:9999", "http://example.org", "http://localhost.evil.org", "http://127.0.0.1@evil.org/"]
        {
            let error = trust.check(url).unwrap_err();
            assert!(matches!(error, Error::Trust(_)), "{url}");
            assert!(error.to_string().contains("--insecure"), "{error}");
        }
        assert!(trust.clone().insecure(true).check("http://10.0.0.2:9999").is_ok());
        assert!(trust.check("ftp://127.0.0.1").is_err());
        assert!(trust.check("127.0.0.1:9999").is_err());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("ravclient-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, b"not a certificate").unwrap();
        let error = Trust::ca_file(&path).unwrap_err().to_string();
        assert!(error.contains("ca.pem") && error.contains("no PEM certificate"), "{error}");
        let error = Trust::ca_file(&dir.join("missing.pem")).unwrap_err().to_string();
        assert!(error.contains("cannot read the CA certificate"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
