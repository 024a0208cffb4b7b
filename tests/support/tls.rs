//! A certificate authority of the test's own and certificates it signs, written as PEM
//! files for Kamailio and trunkline (rcgen: no openssl command, nothing from outside).

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A CA: its certificate (PEM file) and what it needs to sign more.
pub struct TestCa {
    /// The CA certificate, PEM, in the directory given to [`TestCa::new`].
    pub cert_file: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

/// A certificate the CA signed, with its key: PEM files.
pub struct Issued {
    /// The certificate chain (the leaf, then the CA).
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its files in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("a CA key");
        let cert = params
            .self_signed(&key)
            .expect("a self-signed CA certificate");
        let cert_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("writing the CA certificate");
        TestCa {
            cert_file,
            cert,
            key,
            dir: dir.to_owned(),
        }
    }

    /// A server certificate for `ip` (as its IP SAN) and DNS name `dns`, file names
    /// starting with `stem`.
    pub fn issue(&self, stem: &str, ip: IpAddr, dns: &str) -> Issued {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).expect("leaf parameters");
        params.subject_alt_names.push(SanType::IpAddress(ip));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, dns);
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signing the leaf certificate");
        let cert_file = self.dir.join(format!("{stem}-cert.pem"));
        let key_file = self.dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert_file, format!("{}{}", cert.pem(), self.cert.pem()))
            .expect("writing the certificate chain");
        std::fs::write(&key_file, key.serialize_pem()).expect("writing the key");
        Issued {
            cert_file,
            key_file,
        }
    }
}
