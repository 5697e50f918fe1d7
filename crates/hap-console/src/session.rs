//! Sessions in cookies the console alone can read or make: encrypted and signed (AES-256-GCM, the
//! `cookie` crate's private jar) with a key from a Secret, `Secure`, `HttpOnly`, `SameSite=Lax`, and
//! with an end written inside them, so a copied cookie dies with its session however the browser
//! keeps it. Nothing is stored server-side; signing out removes the cookie.

use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::identity::Identity;

/// `__Host-`: browsers take the cookie only from this very host over HTTPS, so a page of a sibling
/// domain cannot plant one (a session or a sign-in of its choosing).
pub const SESSION: &str = "__Host-hap_session";
/// The sign-in in flight: the state, nonce and PKCE verifier the IdP's answer must match.
pub const SIGN_IN: &str = "__Host-hap_sign_in";
/// The longest a cookie's JSON may be: sealed, it grows by a third and 28 bytes, and browsers keep at
/// most 4 KiB per cookie.
pub const MAX_VALUE: usize = 2800;

/// How long a session lasts, and a sign-in may take.
pub const SESSION_SECONDS: i64 = 8 * 3600;
pub const SIGN_IN_SECONDS: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub identity: Identity,
    /// The token every form carries back: a page of another site cannot know it.
    pub csrf: String,
    /// Unix seconds.
    pub ends: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go once signed in: a path of the console's own, never another site.
    pub then: String,
    pub ends: i64,
}

/// What ends: a session or a sign-in.
trait Ends {
    fn ends(&self) -> i64;
}
impl Ends for Session {
    fn ends(&self) -> i64 {
        self.ends
    }
}
impl Ends for SignIn {
    fn ends(&self) -> i64 {
        self.ends
    }
}

/// The cookie `name` holding `value`, sealed into `jar`; an error if it would be too large to keep.
fn seal<T: Serialize>(
    jar: PrivateCookieJar,
    name: &'static str,
    value: &T,
    max_age: i64,
) -> Result<PrivateCookieJar, String> {
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    if text.len() > MAX_VALUE {
        return Err(format!(
            "the session would hold {} bytes, more than a browser keeps in one cookie",
            text.len()
        ));
    }
    Ok(jar.add(
        Cookie::build((name, text))
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(time_seconds(max_age))
            .build(),
    ))
}

fn time_seconds(s: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(s)
}

/// The value of cookie `name`, if the console sealed it and it has not ended at `now`.
fn open<T: DeserializeOwned + Ends>(jar: &PrivateCookieJar, name: &str, now: i64) -> Option<T> {
    let cookie = jar.get(name)?;
    let value: T = serde_json::from_str(cookie.value()).ok()?;
    (value.ends() > now).then_some(value)
}

pub fn start(jar: PrivateCookieJar, session: &Session) -> Result<PrivateCookieJar, String> {
    seal(
        jar.remove(removal(SIGN_IN)),
        SESSION,
        session,
        SESSION_SECONDS,
    )
}

pub fn current(jar: &PrivateCookieJar, now: i64) -> Option<Session> {
    open(jar, SESSION, now)
}

pub fn end(jar: PrivateCookieJar) -> PrivateCookieJar {
    jar.remove(removal(SESSION))
}

pub fn begin_sign_in(jar: PrivateCookieJar, sign_in: &SignIn) -> Result<PrivateCookieJar, String> {
    seal(jar, SIGN_IN, sign_in, SIGN_IN_SECONDS)
}

pub fn sign_in_in_flight(jar: &PrivateCookieJar, now: i64) -> Option<SignIn> {
    open(jar, SIGN_IN, now)
}

fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build(name).path("/").build()
}

/// Where to go once signed in: a path of the console's own, or `/`. Only printable ASCII, starting
/// with one `/` and with no backslash: browsers drop tabs and newlines from a URL and read a
/// backslash as `/`, so `/<tab>/evil.example` or `/\evil.example` would leave the site.
pub fn return_path(then: Option<String>) -> String {
    then.filter(|t| {
        t.starts_with('/')
            && !t.starts_with("//")
            && t.bytes().all(|b| b.is_ascii_graphic())
            && !t.contains('\\')
            && t.len() <= 512
    })
    .unwrap_or_else(|| "/".into())
}

/// The key sessions are sealed with: 64 bytes from the Secret (`openssl rand 64`), no fewer.
pub fn key(bytes: &[u8]) -> Result<Key, String> {
    if bytes.len() < 64 {
        return Err(format!(
            "the session key has {} bytes; it needs 64 random ones (openssl rand 64)",
            bytes.len()
        ));
    }
    Ok(Key::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, header};

    fn key() -> Key {
        super::key(&[7u8; 64]).unwrap()
    }

    fn session(ends: i64) -> Session {
        Session {
            identity: Identity {
                username: "oidc:alice".into(),
                groups: vec!["team-a".into()],
            },
            csrf: "c".repeat(32),
            ends,
        }
    }

    /// The cookies a browser would send back after `jar`'s response.
    fn returned(jar: PrivateCookieJar, key: &Key) -> PrivateCookieJar {
        let mut headers = HeaderMap::new();
        let response = axum::response::IntoResponse::into_response((jar, ()));
        for set in response.headers().get_all(header::SET_COOKIE) {
            let cookie = Cookie::parse(set.to_str().unwrap().to_string()).unwrap();
            assert!(cookie.secure().unwrap() && cookie.http_only().unwrap());
            assert_eq!(cookie.same_site(), Some(SameSite::Lax));
            headers.append(
                header::COOKIE,
                format!("{}={}", cookie.name(), cookie.value())
                    .parse()
                    .unwrap(),
            );
        }
        PrivateCookieJar::from_headers(&headers, key.clone())
    }

    #[test]
    fn only_a_path_of_the_console_is_a_way_back() {
        let back = |t: &str| return_path(Some(t.to_string()));
        assert_eq!(back("/workspaces/new?x=1"), "/workspaces/new?x=1");
        for away in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "/\n",
            "/ x",
        ] {
            assert_eq!(back(away), "/", "{away:?}");
        }
        assert_eq!(return_path(None), "/");
    }

    #[test]
    fn a_session_comes_back_until_it_ends() {
        let key = key();
        let jar = start(PrivateCookieJar::new(key.clone()), &session(1000)).unwrap();
        let back = returned(jar, &key);
        assert_eq!(current(&back, 999), Some(session(1000)));
        assert_eq!(current(&back, 1000), None);
    }

    #[test]
    fn a_cookie_sealed_with_another_key_or_changed_is_no_session() {
        let jar = start(PrivateCookieJar::new(key()), &session(1000)).unwrap();
        let other = super::key(&[8u8; 64]).unwrap();
        assert_eq!(current(&returned(jar.clone(), &other), 0), None);
        // The value in plain JSON, as someone would forge it: not sealed, so not read.
        let mut headers = HeaderMap::new();
        let forged = serde_json::to_string(&session(i64::MAX)).unwrap();
        headers.insert(
            header::COOKIE,
            format!("{SESSION}={forged}").parse().unwrap(),
        );
        assert_eq!(
            current(&PrivateCookieJar::from_headers(&headers, key()), 0),
            None
        );
    }

    #[test]
    fn a_session_too_large_for_a_cookie_is_refused_and_a_short_key_too() {
        let mut big = session(1000);
        big.identity.groups = (0..40).map(|i| format!("{i:0>100}")).collect();
        let err = start(PrivateCookieJar::new(key()), &big).unwrap_err();
        assert!(err.contains("more than a browser keeps"), "{err}");
        assert!(super::key(&[1u8; 32]).unwrap_err().contains("needs 64"));
    }
}
