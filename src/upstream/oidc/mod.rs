//! Any OpenID Connect issuer as an upstream (docs/oidc.md#latchkey-as-a-relying-party): a provider whose preset is
//! `oidc`, or a custom provider opted in with `-oidc`, signs in as a relying party of the issuer at its `-url`; so
//! does a preset with a fixed issuer (Apple, docs/oidc.md#sign-in-with-apple), whose catalogue entry stands in for
//! the discovery document.
//!
//! The engine (`start`, `callback`) stays the OAuth 2.0 one; this module gives it the issuer's endpoints from its
//! discovery document ([`resolve`]), and checks what OIDC adds: RFC 9207's `iss` ([`check_response_iss`]), the ID
//! token ([`verify_id_token`], against the issuer's JWKS) and userinfo's `sub` ([`identity`]). The link's account id
//! is the ID token's `sub`, never an email; the provider is bound to one issuer, its `-url`, which discovery's
//! `issuer` and every ID token's `iss` must equal byte for byte.
//!
//! Discovery documents and JWKS are fetched with the upstream client (no redirects followed, 5 s to connect),
//! bounded in time ([`super::deadline`]) and size (`limits.upstream_body_bytes`), and cached per URL in
//! `AppState::oidc_documents`; an unknown `kid` refetches the JWKS, at most once per [`REFETCH_GAP_MS`].

pub mod discovery;
pub mod id_token;
pub mod jwks;

use std::sync::Arc;

use serde_json::{Map, Value};

use self::discovery::Discovery;
use self::id_token::{Expected, Rejection};
use crate::model::provider::{IdentityTokenSentVia, Provider, TokenSentVia};
use crate::state::AppState;

/// The catalogue preset of a generic OpenID Connect issuer.
pub use crate::model::catalogue::OIDC as PRESET;
/// The option a custom provider opts in with (`Accounts_OAuth_Custom-<Name>-oidc`), stored as `"true"`.
pub use crate::model::provider::OIDC_OPTION as OPTION;
/// How long a discovery document or JWKS is used before it is fetched again.
pub const TTL_MS: i64 = 15 * 60 * 1000;
/// The least time between two JWKS fetches for an unknown `kid`, so that tokens with made-up kids cannot make
/// Latchkey hammer the issuer.
pub const REFETCH_GAP_MS: i64 = 30 * 1000;

/// Whether `p` signs in as an OpenID Connect relying party.
pub fn is_oidc(p: &Provider) -> bool {
    p.preset.as_deref() == Some(PRESET) || p.options.get(OPTION).is_some_and(|v| v == "true")
}

/// For an OIDC provider, the provider with its endpoints taken from the issuer's discovery document, and that
/// document; for a preset with a fixed issuer (Apple), the provider as it is and the document its catalogue entry
/// amounts to; any other provider as it is. The userinfo endpoint gets the access token as a Bearer header (OIDC
/// Core §5.3.1) unless a custom provider chose otherwise.
pub async fn resolve(
    s: &AppState,
    mut p: Provider,
) -> Result<(Provider, Option<Discovery>), String> {
    if let Some(d) = fixed(&p) {
        return Ok((p, Some(d)));
    }
    if !is_oidc(&p) {
        return Ok((p, None));
    }
    let d = discover(s, &p.url).await?;
    p.authorize_path = d.authorization_endpoint.clone();
    p.token_path = d.token_endpoint.clone();
    if let Some(u) = &d.userinfo_endpoint {
        p.identity_path = u.clone();
    }
    if p.preset.is_some() {
        // OIDC Core §5.3.1 and §9: a Bearer header at userinfo, client_secret_basic (the default method).
        p.identity_token_sent_via = IdentityTokenSentVia::Header;
        p.token_sent_via = TokenSentVia::Header;
    }
    Ok((p, Some(d)))
}

/// The discovery document a preset's fixed issuer amounts to: its endpoints as the catalogue places them, no
/// userinfo, no PKCE, no RFC 9207 `iss` (Apple offers neither).
fn fixed(p: &Provider) -> Option<Discovery> {
    let up = crate::model::catalogue::resolve(p).ok()?;
    let issuer = up.issuer?;
    Some(Discovery {
        issuer: issuer.issuer,
        authorization_endpoint: up.authorize_url,
        token_endpoint: up.token_url,
        userinfo_endpoint: None,
        jwks_uri: issuer.jwks_uri,
        code_challenge_methods_supported: Vec::new(),
        authorization_response_iss_parameter_supported: false,
    })
}

/// RFC 9207: when the issuer says it sends `iss` with the authorization response, the response must carry it
/// and it must be the issuer; one that sends it unasked must send the right one too.
pub fn check_response_iss(d: &Discovery, iss: Option<&String>) -> Result<(), String> {
    match iss {
        Some(i) if *i == d.issuer => Ok(()),
        Some(_) => Err("the authorization response names another issuer (wrong issuer)".into()),
        None if d.authorization_response_iss_parameter_supported => {
            Err("the authorization response has no iss although the issuer promises one".into())
        }
        None => Ok(()),
    }
}

/// The claims of the token response's ID token, validated for this sign-in (`nonce` from its pending cookie).
pub async fn verify_id_token(
    s: &AppState,
    d: &Discovery,
    p: &Provider,
    tokens: &Value,
    nonce: &str,
) -> Result<Map<String, Value>, String> {
    let token = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or("the token response has no id_token")?;
    let want = Expected {
        issuer: &d.issuer,
        client_id: p.client_id(),
        nonce,
        access_token: tokens
            .get("access_token")
            .and_then(Value::as_str)
            .unwrap_or(""),
        now_secs: s.clock.now_ms() / 1000,
    };
    let keys = jwks::parse(jwks_doc(s, &d.jwks_uri, false).await?.as_ref())?;
    match id_token::validate(token, &keys, &want) {
        Err(Rejection::UnknownKey) => {
            let keys = jwks::parse(jwks_doc(s, &d.jwks_uri, true).await?.as_ref())?;
            id_token::validate(token, &keys, &want).map_err(|e| e.to_string())
        }
        r => r.map_err(|e| e.to_string()),
    }
}

/// The identity document: the ID token's claims, completed by userinfo's when fetched, whose `sub` must be the
/// ID token's (OIDC Core §5.3.4). `sub` is the account id (`upstream::identity` reads it first).
pub fn identity(mut claims: Map<String, Value>, userinfo: Option<Value>) -> Result<Value, String> {
    if let Some(info) = userinfo {
        let Value::Object(info) = info else {
            return Err("the userinfo response is not a JSON object".into());
        };
        if info.get("sub") != claims.get("sub") {
            return Err("the userinfo sub is not the ID token's (userinfo sub mismatch)".into());
        }
        claims.extend(info);
    }
    Ok(Value::Object(claims))
}

/// The discovery document of `issuer`, cached once it checks out.
async fn discover(s: &AppState, issuer: &str) -> Result<Discovery, String> {
    let url = discovery::url_of(issuer);
    if let Some(doc) = cached(s, &url, TTL_MS) {
        return Discovery::parse(&doc, issuer);
    }
    let doc = fetch_json(s, &url, "discovery document").await?;
    let d = Discovery::parse(&doc, issuer)?;
    remember(s, url, doc);
    Ok(d)
}

/// The JWKS at `uri`: the cached one while fresh, or (`refresh`, after an unknown kid) while younger than
/// [`REFETCH_GAP_MS`].
async fn jwks_doc(s: &AppState, uri: &str, refresh: bool) -> Result<Arc<Value>, String> {
    if let Some(doc) = cached(s, uri, if refresh { REFETCH_GAP_MS } else { TTL_MS }) {
        return Ok(doc);
    }
    let doc = fetch_json(s, uri, "JWKS").await?;
    jwks::parse(&doc)?;
    Ok(remember(s, uri.to_owned(), doc))
}

fn cached(s: &AppState, url: &str, max_age_ms: i64) -> Option<Arc<Value>> {
    let entry = s.oidc_documents.get(url)?;
    (s.clock.now_ms() - entry.0 < max_age_ms).then(|| entry.1.clone())
}

fn remember(s: &AppState, url: String, doc: Value) -> Arc<Value> {
    let doc = Arc::new(doc);
    s.oidc_documents
        .insert(url, (s.clock.now_ms(), doc.clone()));
    doc
}

/// GET `url` as JSON: bounded in time and size; a redirect is an error (the upstream client follows none).
async fn fetch_json(s: &AppState, url: &str, what: &str) -> Result<Value, String> {
    let resp = s
        .http
        .get(url)
        .header("accept", "application/json")
        .timeout(super::deadline(&s.config))
        .send()
        .await
        .map_err(|e| {
            format!(
                "the issuer's {what} is unreachable ({})",
                super::exchange::short(&e)
            )
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("the issuer's {what} answered {status}"));
    }
    let body = super::exchange::read_capped(resp, s.config.limits.upstream_body_bytes)
        .await
        .map_err(|e| match e {
            super::exchange::BodyError::TooLarge(cap) => {
                format!("the issuer's {what} is larger than {cap} bytes")
            }
            super::exchange::BodyError::Read => format!("the issuer's {what} could not be read"),
        })?;
    serde_json::from_slice(&body).map_err(|_| format!("the issuer's {what} is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::provider::{Setting, SettingValue};
    use serde_json::json;

    #[test]
    fn oidc_is_the_preset_or_the_opt_in() {
        let mut p = Provider::new("id".into(), "Idp".into(), 0);
        assert!(!is_oidc(&p));
        p.set(Setting::Oidc, SettingValue::Bool(true)).unwrap();
        assert!(is_oidc(&p));
        assert_eq!(p.get(Setting::Oidc), SettingValue::Bool(true));
        p.set(Setting::Oidc, SettingValue::Bool(false)).unwrap();
        assert!(!is_oidc(&p) && p.options.is_empty());
        p.preset = Some(PRESET.into());
        assert!(is_oidc(&p));
    }

    #[test]
    fn the_response_iss_is_required_when_promised_and_exact_when_sent() {
        let mut d = Discovery::parse(
            &json!({"issuer": "https://i", "authorization_endpoint": "https://i/a", "token_endpoint": "https://i/t",
                    "jwks_uri": "https://i/k"}),
            "https://i",
        )
        .unwrap();
        assert!(check_response_iss(&d, None).is_ok());
        assert!(check_response_iss(&d, Some(&"https://evil".into())).is_err());
        d.authorization_response_iss_parameter_supported = true;
        assert!(check_response_iss(&d, None).is_err());
        assert!(check_response_iss(&d, Some(&"https://i".into())).is_ok());
    }

    #[test]
    fn userinfo_must_be_about_the_same_subject() {
        let claims = json!({"sub": "u1", "email": "a@x.io"})
            .as_object()
            .unwrap()
            .clone();
        let merged = identity(claims.clone(), Some(json!({"sub": "u1", "name": "A"}))).unwrap();
        assert_eq!(merged["name"], "A");
        assert_eq!(merged["email"], "a@x.io");
        let err = identity(claims.clone(), Some(json!({"sub": "u2"}))).unwrap_err();
        assert!(err.contains("userinfo sub mismatch"));
        assert!(identity(claims.clone(), Some(json!({"name": "no sub"}))).is_err());
        assert!(identity(claims, None).is_ok());
    }
}
