//! The operator's certificate authority: one CA for the whole installation, kept in the Secret
//! `hap-ca` of the operator's namespace, which signs the certificates of the servers the operator
//! runs (a HapQuery's Trino coordinator). Clients trust it through a ConfigMap each resource publishes
//! (`ca.crt`, no key), so one trusted certificate covers every stack of the cluster.
//!
//! The CA is read, or made, once at start (`ensure`, the only I/O here); a CA within its last year is
//! replaced then, and the replaced certificate stays in the published bundle until it expires, so
//! clients that trust the bundle keep trusting the servers it signed. Server certificates are short
//! (90 days) and the plan renews each after two thirds of its life (`renew_after`).
//!
//! rcgen makes and signs the certificates (ECDSA P-256); x509-parser reads the kept ones back.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use sha2::{Digest, Sha256};

use super::MANAGER;

/// The Secret that keeps the CA, in the operator's namespace.
pub const SECRET: &str = "hap-ca";
/// Its keys: the certificate, the private key, and the certificate it replaced (while valid).
pub const CERT_KEY: &str = "ca.crt";
pub const KEY_KEY: &str = "ca.key";
pub const PREVIOUS_KEY: &str = "previous.crt";

/// The annotation of an issued certificate's Secret naming the CA that signed it (`Trust::id`).
pub const ISSUER: &str = "hap.cloudian.com/issuer";
/// The annotation of an issued certificate's Secret saying when the plan renews it.
pub const RENEW_AFTER: &str = "hap.cloudian.com/renew-after";

const CA_LIFETIME: SignedDuration = SignedDuration::from_hours(10 * 365 * 24);
/// A CA with less than this left is replaced at start.
const CA_RENEWAL: SignedDuration = SignedDuration::from_hours(365 * 24);
pub const SERVER_LIFETIME: SignedDuration = SignedDuration::from_hours(90 * 24);
/// Certificates are dated a little in the past, for clocks slightly behind the operator's.
const BACKDATE: SignedDuration = SignedDuration::from_mins(5);

/// What builders may know of the CA: its certificates (public) and an id for the current one.
#[derive(Clone, Debug, PartialEq)]
pub struct Trust {
    /// The PEM bundle clients trust: the current CA, then the one it replaced while still valid.
    pub bundle: String,
    /// A short SHA-256 fingerprint of the current CA certificate: a server certificate whose
    /// `ISSUER` annotation differs was signed by another CA and is issued again.
    pub id: String,
}

/// The files of a ConfigMap that publishes the CA to clients: `ca.crt`, the bundle.
pub fn bundle_data(trust: &Trust) -> std::collections::BTreeMap<String, String> {
    [(BUNDLE_KEY.to_string(), trust.bundle.clone())].into()
}

/// The key clients read the bundle from.
pub const BUNDLE_KEY: &str = "ca.crt";

/// The CA with its key. Never printed: `Debug` shows its id only.
pub struct Authority {
    cert_pem: String,
    key: KeyPair,
    previous: Option<String>,
    not_after: Timestamp,
    trust: Trust,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("id", &self.trust.id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("the CA Secret {SECRET} holds no valid {0}: {1}")]
    Invalid(&'static str, String),
    #[error("could not make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// A server certificate and its key, PEM, with the time the plan should renew it.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub renew_after: Timestamp,
}

fn offset(t: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.as_second())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The end of a PEM certificate's validity, and its fingerprint.
fn read_certificate(pem_str: &str) -> Result<(Timestamp, String), AuthorityError> {
    let invalid = |e: String| AuthorityError::Invalid(CERT_KEY, e);
    let block = pem::parse(pem_str).map_err(|e| invalid(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
        .map_err(|e| invalid(e.to_string()))?;
    let not_after = Timestamp::from_second(cert.validity().not_after.timestamp())
        .map_err(|e| invalid(e.to_string()))?;
    let digest = Sha256::digest(block.contents());
    let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok((not_after, id))
}

impl Authority {
    /// A new CA, valid ten years from `now`.
    pub fn generate(now: Timestamp) -> Result<Self, AuthorityError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "HAP operator CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "HAP");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Whoever trusts it (a workspace trusts it for every connection) trusts it for the cluster's
        // Service names and the loopback only: its key, if it leaked, could not pass for any other
        // server (S3, a package index).
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("svc".into()),
                GeneralSubtree::DnsName("localhost".into()),
                GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 1], [255, 255, 255, 255])),
            ],
            excluded_subtrees: Vec::new(),
        });
        params.not_before = offset(now - BACKDATE);
        params.not_after = offset(now + CA_LIFETIME);
        let cert = params.self_signed(&key)?;
        Self::from_parts(cert.pem(), key, None)
    }

    /// The CA kept in a Secret's values. The certificate it replaced stays in the bundle while it
    /// is valid at `now`; one that cannot be read or has expired is left out.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        previous: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, AuthorityError> {
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| AuthorityError::Invalid(KEY_KEY, e.to_string()))?;
        let previous = previous
            .filter(|p| read_certificate(p).is_ok_and(|(not_after, _)| not_after > now))
            .map(str::to_string);
        Self::from_parts(cert_pem.to_string(), key, previous)
    }

    fn from_parts(
        cert_pem: String,
        key: KeyPair,
        previous: Option<String>,
    ) -> Result<Self, AuthorityError> {
        let (not_after, id) = read_certificate(&cert_pem)?;
        // The key must be the certificate's: a mismatch would sign certificates nobody can verify.
        let block =
            pem::parse(&cert_pem).map_err(|e| AuthorityError::Invalid(CERT_KEY, e.to_string()))?;
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
            .map_err(|e| AuthorityError::Invalid(CERT_KEY, e.to_string()))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(AuthorityError::Invalid(
                KEY_KEY,
                "the key is not the certificate's".into(),
            ));
        }
        let mut bundle = cert_pem.clone();
        if let Some(p) = &previous {
            bundle.push_str(p);
        }
        Ok(Authority {
            cert_pem,
            key,
            previous,
            not_after,
            trust: Trust { bundle, id },
        })
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Whether the CA is in its last year at `now`, and should be replaced.
    pub fn due(&self, now: Timestamp) -> bool {
        now + CA_RENEWAL >= self.not_after
    }

    /// The CA that replaces this one: new, with this one's certificate kept in the bundle.
    pub fn successor(&self, now: Timestamp) -> Result<Self, AuthorityError> {
        let next = Self::generate(now)?;
        let previous = (self.not_after > now).then(|| self.cert_pem.clone());
        Self::from_parts(next.cert_pem, next.key, previous)
    }

    /// A server certificate for `hosts` (DNS names or IP addresses), valid 90 days from `now`.
    pub fn issue(&self, hosts: &[String], now: Timestamp) -> Result<Issued, AuthorityError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(first) = hosts.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let not_before = now - BACKDATE;
        let not_after = (now + SERVER_LIFETIME).min(self.not_after);
        params.not_before = offset(not_before);
        params.not_after = offset(not_after);
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        // Renewed after two thirds of its life: a month to spare with 90 days.
        let life = not_after.duration_since(not_before);
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            renew_after: not_before + life * 2 / 3,
        })
    }

    /// The Secret that keeps it: `data`, not `stringData`, so that an apply leaves no key of an
    /// earlier write behind (a `previous.crt` that expired).
    fn secret(&self, namespace: &str) -> Secret {
        let bytes = |s: String| ByteString(s.into_bytes());
        let mut data = std::collections::BTreeMap::from([
            (CERT_KEY.to_string(), bytes(self.cert_pem.clone())),
            (KEY_KEY.to_string(), bytes(self.key.serialize_pem())),
        ]);
        if let Some(p) = &self.previous {
            data.insert(PREVIOUS_KEY.to_string(), bytes(p.clone()));
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(SECRET.into()),
                namespace: Some(namespace.into()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_string(),
                        MANAGER.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        }
    }
}

/// The CA in the Secret's values, if it holds one.
fn kept(secret: &Secret, now: Timestamp) -> Option<Result<Authority, AuthorityError>> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let (cert, key) = (text(CERT_KEY)?, text(KEY_KEY)?);
    Some(Authority::from_pem(
        &cert,
        &key,
        text(PREVIOUS_KEY).as_deref(),
        now,
    ))
}

/// Reads the CA from `hap-ca` in `namespace`, or makes it: when the Secret is missing (created; an
/// instance that loses the race reads the winner's), or when the CA is in its last year (replaced, the
/// old certificate kept in the bundle). A Secret that holds no usable CA is an error, not replaced:
/// its key may still be wanted, and clients trust what it held; the message says how to start anew.
pub async fn ensure(client: &Client, namespace: &str) -> anyhow::Result<Authority> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let now = Timestamp::now();
    let Some(existing) = api.get_opt(SECRET).await? else {
        let ca = Authority::generate(now)?;
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        return match api.create(&params, &ca.secret(namespace)).await {
            Ok(_) => {
                tracing::info!(%namespace, secret = SECRET, id = %ca.trust.id, "created the operator's CA");
                Ok(ca)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let secret = api.get(SECRET).await?;
                Ok(kept(&secret, now).ok_or_else(|| anyhow::anyhow!("{SECRET} has no CA"))??)
            }
            Err(e) => Err(e.into()),
        };
    };
    let replacement = match kept(&existing, now) {
        Some(Ok(ca)) if !ca.due(now) => return Ok(ca),
        Some(Ok(ca)) => {
            tracing::info!(%namespace, secret = SECRET, "the operator's CA expires within a year: replaced");
            ca.successor(now)?
        }
        Some(Err(e)) => anyhow::bail!(
            "{e}. The operator neither uses nor overwrites it; if no server should keep its certificates, delete it (kubectl delete secret -n {namespace} {SECRET}) and the operator makes a new CA, which clients must then trust"
        ),
        None => anyhow::bail!(
            "the Secret {SECRET} has no {CERT_KEY} and {KEY_KEY}. The operator neither uses nor overwrites it; delete it (kubectl delete secret -n {namespace} {SECRET}) and the operator makes a new CA"
        ),
    };
    api.patch(
        SECRET,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&replacement.secret(namespace)),
    )
    .await?;
    Ok(replacement)
}

/// `ensure`, tried again with back-off until it succeeds: the controllers cannot sign a server's
/// certificate before, and each failure is logged with its cause (a missing permission, an API
/// server that does not answer).
pub async fn ensure_until(client: &Client, namespace: &str) -> Authority {
    let mut delay = Duration::from_secs(1);
    loop {
        match ensure(client, namespace).await {
            Ok(ca) => return ca,
            Err(e) => tracing::warn!(%namespace, secret = SECRET, error = %e, retry_in = ?delay,
                "could not read or create the operator's CA"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-07T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_kept_ca_reads_back_as_the_same_ca() {
        let ca = Authority::generate(now()).unwrap();
        let again =
            Authority::from_pem(&ca.cert_pem, &ca.key.serialize_pem(), None, now()).unwrap();
        assert_eq!(again.trust, ca.trust);
        assert!(!again.due(now()));
        assert!(again.due(now() + SignedDuration::from_hours(9 * 365 * 24 + 24)));
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let (a, b) = (
            Authority::generate(now()).unwrap(),
            Authority::generate(now()).unwrap(),
        );
        let err =
            Authority::from_pem(&a.cert_pem, &b.key.serialize_pem(), None, now()).unwrap_err();
        assert!(err.to_string().contains("not the certificate's"), "{err}");
        let err = Authority::from_pem("junk", &a.key.serialize_pem(), None, now()).unwrap_err();
        assert!(err.to_string().contains(CERT_KEY), "{err}");
    }

    #[test]
    fn a_server_certificate_names_its_hosts_chains_to_the_ca_and_is_renewed_at_two_thirds() {
        let ca = Authority::generate(now()).unwrap();
        let hosts = vec!["q-trino".to_string(), "q-trino.ns.svc".to_string()];
        let issued = ca.issue(&hosts, now()).unwrap();
        let block = pem::parse(&issued.cert_pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents()).unwrap();
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["DNSName(q-trino)", "DNSName(q-trino.ns.svc)"]);
        let ca_block = pem::parse(&ca.cert_pem).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca_block.contents()).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        assert_eq!(
            issued.renew_after,
            now() - BACKDATE + (SERVER_LIFETIME + BACKDATE) * 2 / 3
        );
        assert!(KeyPair::from_pem(&issued.key_pem).is_ok());
    }

    #[test]
    fn a_successor_keeps_the_replaced_certificate_in_the_bundle() {
        let ca = Authority::generate(now()).unwrap();
        let next = ca
            .successor(now() + SignedDuration::from_hours(9 * 365 * 24 + 24))
            .unwrap();
        assert_ne!(next.trust.id, ca.trust.id);
        assert!(next.trust.bundle.starts_with(&next.cert_pem));
        assert!(next.trust.bundle.ends_with(&ca.cert_pem));
        assert!(format!("{next:?}").contains(&next.trust.id));
        assert!(!format!("{next:?}").contains("PRIVATE"));
        // Kept and read again: the replaced certificate stays while valid, and goes once expired.
        let key = next.key.serialize_pem();
        let kept = |at| Authority::from_pem(&next.cert_pem, &key, Some(&ca.cert_pem), at).unwrap();
        assert_eq!(kept(now()).trust.bundle, next.trust.bundle);
        let expired = now() + SignedDuration::from_hours(11 * 365 * 24);
        assert_eq!(kept(expired).trust.bundle, next.cert_pem);
    }

    #[test]
    fn the_ca_may_sign_for_service_names_and_the_loopback_only() {
        let ca = Authority::generate(now()).unwrap();
        let block = pem::parse(&ca.cert_pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents()).unwrap();
        let constraints = cert.name_constraints().unwrap().unwrap().value;
        let permitted: Vec<String> = constraints
            .permitted_subtrees
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| format!("{:?}", s.base))
            .collect();
        assert_eq!(permitted.len(), 3, "{permitted:?}");
        assert!(
            permitted[0].contains("svc") && permitted[1].contains("localhost"),
            "{permitted:?}"
        );
        assert!(constraints.excluded_subtrees.is_none());
    }
}
