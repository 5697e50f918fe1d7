//! Sign-in with OpenID Connect, the authorization code flow with PKCE, a nonce and a state, through
//! the `openidconnect` crate. The IdP is found by discovery when a sign-in first needs it (so the
//! console starts, and says so in words, while the IdP is down) and kept once found.

use std::collections::BTreeMap;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::session::SignIn;

/// Every claim of the ID token, for the configured username and groups claims to be read from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    #[serde(flatten)]
    pub all: BTreeMap<String, Value>,
}
impl AdditionalClaims for Claims {}

type Fields = IdTokenFields<
    Claims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Client = openidconnect::Client<
    Claims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The client's registration at the IdP.
#[derive(Clone)]
pub struct Registration {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The console's own callback, `https://<host>/callback`.
    pub redirect_url: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in service at {issuer} cannot be reached: {why}")]
    Unreachable { issuer: String, why: String },
    #[error("the sign-in service's answer was not accepted: {0}")]
    Rejected(String),
    #[error("this sign-in has expired or was started elsewhere; sign in again")]
    Stale,
}

pub struct Provider {
    registration: Registration,
    http: reqwest::Client,
    /// The client from the last discovery, and when it was made.
    client: Mutex<Option<(Client, Instant)>>,
}

/// How long a discovery (the IdP's endpoints and signing keys) is kept: keys the IdP rotates are
/// picked up within this, and at once after a sign-in whose token they could not verify.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The HTTP client for the IdP: bounded in time (an IdP that accepts connections and never answers
/// must not hold sign-ins forever), no redirects followed (a sign-in's requests go where discovery
/// says, no further), and the extra CA certificates given.
pub fn http_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the IdP's CA certificates: {e}"))?;
        for cert in certs {
            http = http.add_root_certificate(cert);
        }
    }
    http.build().map_err(|e| e.to_string())
}

/// Why an issuer URL cannot be used: it must be https, but for one on the machine's own loopback.
pub fn issuer_problem(issuer: &str) -> Option<String> {
    let loopback = [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://[::1]:",
        "http://localhost:",
    ];
    if issuer.starts_with("https://") || loopback.iter().any(|l| issuer.starts_with(l)) {
        None
    } else {
        Some(format!(
            "the issuer {issuer:?} must be an https:// URL: the ID tokens' keys come from it"
        ))
    }
}

impl Provider {
    pub fn new(registration: Registration, http: reqwest::Client) -> Self {
        Self {
            registration,
            http,
            client: Mutex::new(None),
        }
    }

    /// The client, discovered again when the last discovery is an hour old or was forgotten; a failed
    /// discovery is tried again on the next sign-in.
    async fn client(&self) -> Result<Client, SignInError> {
        if let Some((client, at)) = self.client.lock().await.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(client.clone());
        }
        let r = &self.registration;
        let unreachable = |why: String| SignInError::Unreachable {
            issuer: r.issuer.clone(),
            why,
        };
        let issuer = IssuerUrl::new(r.issuer.clone()).map_err(|e| unreachable(e.to_string()))?;
        // Not under the lock: the HTTP client's own time bound keeps this short.
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unreachable(chain(&e)))?;
        let client = Client::from_provider_metadata(
            metadata,
            ClientId::new(r.client_id.clone()),
            Some(ClientSecret::new(r.client_secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new(r.redirect_url.clone()).map_err(|e| unreachable(e.to_string()))?,
        );
        *self.client.lock().await = Some((client.clone(), Instant::now()));
        Ok(client)
    }

    /// Forgets the discovery, so the next sign-in fetches the IdP's keys again.
    async fn forget(&self) {
        *self.client.lock().await = None;
    }

    /// Where to send the browser, and what its return must match.
    pub async fn begin(&self, then: String, now: i64) -> Result<(String, SignIn), SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let sign_in = SignIn {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            then,
            ends: now + crate::session::SIGN_IN_SECONDS,
        };
        Ok((url.to_string(), sign_in))
    }

    /// The ID token's verified claims for the code the IdP sent back with `state`.
    pub async fn finish(
        &self,
        sign_in: &SignIn,
        code: String,
        state: &str,
    ) -> Result<BTreeMap<String, Value>, SignInError> {
        // The state binds the IdP's answer to the sign-in this browser started (its sealed cookie).
        if state != sign_in.state {
            return Err(SignInError::Stale);
        }
        let client = self.client().await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Rejected(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(sign_in.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Rejected(chain(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| SignInError::Rejected("no ID token in the answer".into()))?;
        // Only the IdP's own (asymmetric) keys may sign: an HMAC token would be keyed with the client
        // secret, which the console holds too.
        let verifier = client.id_token_verifier().set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            CoreJwsSigningAlgorithm::EdDsa,
        ]);
        let claims = match id_token.claims(&verifier, &Nonce::new(sign_in.nonce.clone())) {
            Ok(c) => c,
            Err(e) => {
                // Perhaps keys the IdP has rotated since the discovery: the next sign-in fetches them.
                self.forget().await;
                return Err(SignInError::Rejected(e.to_string()));
            }
        };
        // The standard claims the mapping may name, beside the others.
        let mut all = claims.additional_claims().all.clone();
        all.remove("email");
        all.insert("sub".into(), Value::String(claims.subject().to_string()));
        if let Some(name) = claims.preferred_username() {
            all.insert("preferred_username".into(), Value::String(name.to_string()));
        }
        // An email names the user only once the IdP has verified it (as the API server requires).
        if let Some(email) = claims.email()
            && claims.email_verified() == Some(true)
        {
            all.insert("email".into(), Value::String(email.to_string()));
        }
        Ok(all)
    }
}

/// An error with its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
