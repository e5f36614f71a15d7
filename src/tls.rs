//! TLS for every netrun service and client, on rustls with the `ring`
//! provider: certificates given as PEM files or made for the run (a CA and
//! one leaf signed by it, with rcgen), server and client configurations with
//! ALPN (`h2`, `http/1.1`), and the classes of TLS failures a client counts.
//! Knows nothing of HTTP, scenarios or commands.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::Error;

/// ALPN protocol identifiers (RFC 7301): HTTP/2 over TLS and HTTP/1.1.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// How long a made certificate is valid: long enough for any run, short
/// enough that a leaked key is soon worthless. Browsers cap leaves at 398 days.
const MADE_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The ring provider, installed once as the process default so every
/// builder (ours and any library's) uses the same one.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Err only when another provider was installed first: keep that one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A certificate chain (leaf first) and its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The CA that signed a made certificate, as PEM (what clients trust);
    /// `None` for a certificate read from files.
    pub ca_pem: Option<String>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("made", &self.ca_pem.is_some())
            .finish()
    }
}

/// Where a service's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files: the chain (leaf first) and its private key.
    Files { cert: PathBuf, key: PathBuf },
    /// Made for the run, signed by a CA made for the run.
    Made,
}

impl Identity {
    /// Reads a PEM certificate chain and private key. Errors are input
    /// errors (exit 2) naming the file and what it should hold.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, Error> {
        let bad = |path: &Path, what: &str, why: String| {
            Error::input(format!(
                "TLS {what} `{}` cannot be used: {why}; give a PEM file (--tls-cert/--tls-key, or `tls = {{ cert, key }}` in a scenario), or --tls to make one for the run",
                path.display()
            ))
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad(cert, "certificate", pem_error(e)))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(cert, "certificate", pem_error(e)))?;
        if chain.is_empty() {
            return Err(bad(
                cert,
                "certificate",
                "it holds no `BEGIN CERTIFICATE` block".into(),
            ));
        }
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, "key", pem_error(e)))?;
        let identity = Identity {
            chain,
            key: key_der,
            ca_pem: None,
        };
        // Refuse a key that does not belong to the certificate now, not at
        // the first handshake.
        server_config(&identity).map_err(|e| bad(key, "key", e))?;
        Ok(identity)
    }

    /// Makes a CA and a leaf for `names` (DNS names or IP addresses; the
    /// loopback names are always added), valid from an hour ago for 30 days.
    pub fn made(names: &[String]) -> anyhow::Result<Identity> {
        let now = SystemTime::now();
        let from = now - Duration::from_secs(3600);
        Identity::made_between(names, from, now + MADE_VALIDITY)
    }

    /// [`Identity::made`] valid from `from` to `until` (tests make expired
    /// ones with it).
    pub fn made_between(
        names: &[String],
        from: SystemTime,
        until: SystemTime,
    ) -> anyhow::Result<Identity> {
        MadeCa::between(from, until)?.leaf(names)
    }
    /// Resolves a source: reads the files or makes a certificate.
    pub fn load(source: &CertSource, names: &[String]) -> anyhow::Result<Identity> {
        match source {
            CertSource::Files { cert, key } => Ok(Identity::from_files(cert, key)?),
            CertSource::Made => Identity::made(names),
        }
    }

    /// Writes the chain and the key as PEM files (for another server, nginx
    /// say, to serve the same certificate).
    pub fn write_pem(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        let chain: String = self
            .chain
            .iter()
            .map(|c| pem_block("CERTIFICATE", c))
            .collect();
        std::fs::write(cert, chain)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", cert.display()))?;
        std::fs::write(key, pem_block("PRIVATE KEY", self.key.secret_der()))
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", key.display()))?;
        Ok(())
    }

    /// Writes the CA of a made certificate (nothing for given files) to
    /// `path`, for curl's `--cacert`, a browser, or another tool.
    pub fn write_ca(&self, path: &Path) -> anyhow::Result<Option<PathBuf>> {
        let Some(pem) = &self.ca_pem else {
            return Ok(None);
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))?;
        }
        std::fs::write(path, pem)
            .map_err(|e| anyhow::anyhow!("cannot write the CA to `{}`: {e}", path.display()))?;
        Ok(Some(path.to_path_buf()))
    }
}

/// A CA made for one run: every service's leaf is signed by it, so a client
/// trusts the whole run with one `ca.pem`.
pub struct MadeCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    from: time::OffsetDateTime,
    until: time::OffsetDateTime,
}

impl fmt::Debug for MadeCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MadeCa").finish_non_exhaustive()
    }
}

impl MadeCa {
    /// A CA valid from an hour ago for 30 days.
    pub fn new() -> anyhow::Result<MadeCa> {
        let now = SystemTime::now();
        MadeCa::between(now - Duration::from_secs(3600), now + MADE_VALIDITY)
    }

    /// A CA (and the leaves it signs) valid from `from` to `until`.
    pub fn between(from: SystemTime, until: SystemTime) -> anyhow::Result<MadeCa> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let (from, until) = (
            time::OffsetDateTime::from(from),
            time::OffsetDateTime::from(until),
        );
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "netrun run CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (ca.not_before, ca.not_after) = (from, until);
        let key = KeyPair::generate()?;
        let cert = ca.self_signed(&key)?;
        Ok(MadeCa {
            cert,
            key,
            from,
            until,
        })
    }

    /// The CA as PEM: what clients trust.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf for `names` (DNS names or IP addresses; the loopback names
    /// are always added) signed by this CA.
    pub fn leaf(&self, names: &[String]) -> anyhow::Result<Identity> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
        let mut all: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for n in names {
            if !all.contains(n) {
                all.push(n.clone());
            }
        }
        let mut leaf = CertificateParams::new(all)?;
        leaf.distinguished_name.push(DnType::CommonName, "netrun");
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        (leaf.not_before, leaf.not_after) = (self.from, self.until);
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf.signed_by(&leaf_key, &self.cert, &self.key)?;
        Ok(Identity {
            chain: vec![leaf_cert.der().clone()],
            key: PrivateKeyDer::try_from(leaf_key.serialize_der())
                .map_err(|e| anyhow::anyhow!("made key cannot be used: {e}"))?,
            ca_pem: Some(self.pem()),
        })
    }
}

/// One PEM block: base64 in 64-column lines between BEGIN and END.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::Io(io) => io.to_string(),
        P::NoItemsFound => "it holds no PEM block of that kind".into(),
        other => format!("it is not valid PEM ({other:?})"),
    }
}

/// A server's TLS settings: the identity, with ALPN offering HTTP/2 first
/// and HTTP/1.1 (a client that offers neither gets HTTP/1.1).
pub fn server_config(identity: &Identity) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                "the key does not belong to the certificate".to_string()
            }
            other => other.to_string(),
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Which servers a client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's CA bundle (`SSL_CERT_FILE`, else Debian's
    /// `/etc/ssl/certs/ca-certificates.crt`), if there is one.
    System,
    /// The CAs in this PEM file (the run's `ca.pem`, say).
    CaFile(PathBuf),
    /// These PEM CAs, held in memory (a run's made CA).
    CaPem(String),
    /// Any certificate, any name: measuring only, never for real secrets.
    Insecure,
}

/// A client's TLS settings. Errors are input errors naming the CA file.
/// `alpn` lists the protocols offered, preferred first.
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Runtime(format!("TLS provider: {e}")))?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                provider: provider(),
                check: Check::Any,
            }))
            .with_no_client_auth(),
        Trust::System => builder
            .with_root_certificates(roots(trust)?)
            .with_no_client_auth(),
        given => {
            let (store, pinned) = (roots(given)?, given_certs(given)?);
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider(),
            )
            .build()
            .map_err(|e| Error::input(format!("the CA file cannot be used: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    provider: provider(),
                    check: Check::Pinning { inner, pinned },
                }))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn roots(trust: &Trust) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    let certs = given_certs(trust)?;
    let (_, refused) = store.add_parsable_certificates(certs);
    if refused > 0 && matches!(trust, Trust::CaFile(_) | Trust::CaPem(_)) && store.is_empty() {
        return Err(Error::input(
            "the CA file's certificates cannot be used as trust anchors",
        ));
    }
    Ok(store)
}

/// The certificates `trust` names: the CA file's or the PEM's, the system's
/// bundle; none for `Insecure`.
fn given_certs(trust: &Trust) -> Result<Vec<CertificateDer<'static>>, Error> {
    Ok(match trust {
        Trust::Insecure => Vec::new(),
        Trust::CaPem(pem) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::input(format!("the run's CA is not valid PEM: {e:?}")))?,
        Trust::CaFile(path) => {
            let bad = |why: String| {
                Error::input(format!(
                    "CA file `{}` cannot be used: {why}; give the PEM CA that signed the server's certificate (a run's results/<name>/ca.pem, say)",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(pem_error(e)))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(pem_error(e)))?;
            if certs.is_empty() {
                return Err(bad("it holds no `BEGIN CERTIFICATE` block".into()));
            }
            certs
        }
        Trust::System => {
            let path = std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
            match CertificateDer::pem_file_iter(&path) {
                Ok(iter) => iter.filter_map(Result::ok).collect(),
                Err(_) => Vec::new(),
            }
        }
    })
}

/// The client's certificate check, one of two:
/// - `Pinning`: as webpki against the given CAs, and also a server whose
///   certificate is byte for byte one of them: a self-signed certificate
///   given as its own CA (`openssl req -x509` marks it CA:TRUE, which webpki
///   refuses as a server's own certificate). That is pinning: only that exact
///   certificate passes, and its validity dates and names are still checked.
/// - `Any` (`--insecure`): any certificate for any name.
///
/// Signatures are checked either way, so the handshake is a real one.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    check: Check,
}

#[derive(Debug)]
enum Check {
    Pinning {
        inner: Arc<rustls::client::WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
    },
    Any,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Check::Pinning { inner, pinned } = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // webpki checks the dates before the basic constraints, so a
            // certificate refused as a CA has valid dates; the name is ours
            // to check.
            Err(e) if ca_as_end_entity(&e) && pinned.iter().any(|p| p == end_entity) => {
                let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// webpki's `CaUsedAsEndEntity`: the server presented a CA certificate
/// (rustls carries webpki's error only as an opaque `Other`).
fn ca_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))
        if format!("{o:?}").contains("CaUsedAsEndEntity"))
}

/// A client's TLS: its settings (trust, ALPN) and the name it checks the
/// server's certificate against.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.name == other.name
    }
}

impl ClientTls {
    /// TLS towards `authority` (`host:port`), trusting `trust`; ALPN offers
    /// HTTP/2 first when `http2`, else HTTP/1.1 only.
    pub fn new(trust: &Trust, authority: &str, http2: bool) -> Result<ClientTls, Error> {
        let alpn: &[&[u8]] = if http2 {
            &[ALPN_H2, ALPN_HTTP11]
        } else {
            &[ALPN_HTTP11]
        };
        Ok(ClientTls {
            config: client_config(trust, alpn)?,
            name: server_name(authority)?,
        })
    }
}

impl ClientTls {
    /// Checks the server's certificate against `host` (a DNS name or an IP
    /// address) instead of the address it is reached at, and sends it as
    /// SNI: a certificate for `origin.example` works when the server is
    /// dialled as 127.0.0.1.
    pub fn named(mut self, host: &str) -> Result<ClientTls, Error> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.name = ServerName::try_from(host.to_string()).map_err(|_| {
            Error::input(format!(
                "`{host}` is not a valid TLS server name (a DNS name or an IP address)"
            ))
        })?;
        Ok(self)
    }
}

/// The name a client checks the server's certificate against: the host of
/// `host:port` (brackets of an IPv6 literal removed).
pub fn server_name(authority: &str) -> Result<ServerName<'static>, Error> {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::input(format!("`{host}` is not a valid TLS server name")))
}

/// Why a TLS handshake failed, as a client counts it (a request's error
/// class): the certificate expired, names another host, is not signed by a
/// trusted CA; the peer does not speak TLS; anything else.
pub fn failure_class(e: &std::io::Error) -> &'static str {
    use rustls::{CertificateError, Error as T};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<T>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => "reset",
            std::io::ErrorKind::InvalidData => "tls_not_tls",
            _ => "tls",
        };
    };
    match tls {
        T::InvalidCertificate(CertificateError::Expired)
        | T::InvalidCertificate(CertificateError::ExpiredContext { .. })
        | T::InvalidCertificate(CertificateError::NotValidYet)
        | T::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => "tls_expired",
        T::InvalidCertificate(CertificateError::NotValidForName)
        | T::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => "tls_name",
        T::InvalidCertificate(CertificateError::UnknownIssuer)
        | T::InvalidCertificate(CertificateError::BadSignature) => "tls_untrusted",
        // A CA's certificate as the server's own: a self-signed one not
        // given as the CA (given, it is pinned and passes).
        e if ca_as_end_entity(e) => "tls_untrusted",
        T::InvalidCertificate(_) => "tls_certificate",
        T::InvalidMessage(_) | T::InappropriateMessage { .. } => "tls_not_tls",
        _ => "tls",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_serves_and_its_ca_is_trusted() {
        let id = Identity::made(&["example.test".into()]).unwrap();
        assert!(server_config(&id).is_ok());
        let pem = id.ca_pem.clone().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(client_config(&Trust::CaPem(pem), &[ALPN_H2]).is_ok());
    }

    #[test]
    fn one_run_ca_signs_every_leaf() {
        let ca = MadeCa::new().unwrap();
        let (a, b) = (ca.leaf(&[]).unwrap(), ca.leaf(&["x.test".into()]).unwrap());
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.ca_pem.as_deref(), Some(ca.pem().as_str()));
        assert_ne!(a.chain, b.chain);
    }

    #[test]
    fn server_names_come_from_the_authority() {
        assert_eq!(
            server_name("[::1]:8443").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert_eq!(
            server_name("localhost:443").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(
            server_name("127.0.0.1:1").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
    }

    #[test]
    fn missing_and_mismatched_files_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let e = Identity::from_files(&missing, &missing).unwrap_err();
        assert!(e.to_string().contains("none.pem"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_INPUT);

        // A real certificate with another pair's key.
        let a = Identity::made(&[]).unwrap();
        let b = Identity::made(&[]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let pem = pem_block;
        std::fs::write(&cert, pem("CERTIFICATE", &a.chain[0])).unwrap();
        std::fs::write(&key, pem("PRIVATE KEY", b.key.secret_der())).unwrap();
        let e = Identity::from_files(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        std::fs::write(&key, pem("PRIVATE KEY", a.key.secret_der())).unwrap();
        assert!(Identity::from_files(&cert, &key).is_ok());
        std::fs::write(&cert, "not pem").unwrap();
        let e = Identity::from_files(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("no `BEGIN CERTIFICATE`"), "{e}");
    }
}
