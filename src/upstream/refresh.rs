//! The refresh_token grant (RFC 6749 §6) at a provider's token endpoint, for connected accounts
//! (`core::connected`): bounded in time (the callback's [`super::deadline`]) and in body size
//! (`limits.upstream_body_bytes`), redirects not followed, and no token or secret in any log line or error.

use std::future::Future;

use serde_json::Value;

use super::exchange::{enc, parse_json_or_form, read_capped, short, BodyError};
use super::tokens;
use crate::core::connected::{RefreshError, TokenSet, Upstream};
use crate::model::catalogue::{self, ClientAuth};
use crate::model::provider::Provider;
use crate::state::AppState;

/// The upstream side of connected accounts, over this server's sealer and HTTP client.
pub struct Live<'a>(pub &'a AppState);

impl Upstream for Live<'_> {
    fn open(&self, sealed: &[u8]) -> Option<TokenSet> {
        tokens::open(&self.0.sealer, sealed)
    }

    fn seal(&self, t: &TokenSet) -> Vec<u8> {
        tokens::seal(&self.0.sealer, t)
    }

    fn refresh(
        &self,
        provider: &Provider,
        current: &TokenSet,
    ) -> impl Future<Output = Result<TokenSet, RefreshError>> + Send {
        refresh(self.0, provider, current)
    }
}

/// Refreshes `current` at `p`'s token endpoint. The scope is not sent: the new token has the whole scope of the
/// grant, which is what the link records (a narrower token stored in its place would not cover later requests).
pub async fn refresh(
    s: &AppState,
    p: &Provider,
    current: &TokenSet,
) -> Result<TokenSet, RefreshError> {
    let refresh_token = current
        .refresh_token
        .as_deref()
        .ok_or(RefreshError::Rejected)?;
    let deadline = super::deadline(&s.config);
    let answer = tokio::time::timeout(deadline, grant(s, p, refresh_token))
        .await
        .map_err(|_| {
            RefreshError::Unavailable(format!("no answer within {:.1} s", deadline.as_secs_f64()))
        })??;
    tokens::from_response(&answer, s.clock.now_ms(), Some(current), "")
        .ok_or_else(|| RefreshError::Unavailable("the token response has no access_token".into()))
}

/// The token endpoint's answer to the grant, or why it failed.
async fn grant(s: &AppState, p: &Provider, refresh_token: &str) -> Result<Value, RefreshError> {
    let mut form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ];
    let req = token_request(s, p, &mut form)
        .await?
        .header("accept", "application/json")
        .form(&form);
    let resp = req.send().await.map_err(|e| {
        RefreshError::Unavailable(format!("the token endpoint is unreachable ({})", short(&e)))
    })?;
    let status = resp.status();
    let body = read_capped(resp, s.config.limits.upstream_body_bytes)
        .await
        .map_err(|e| {
            RefreshError::Unavailable(match e {
                BodyError::TooLarge(cap) => {
                    format!("the token response is larger than {cap} bytes")
                }
                BodyError::Read => "the token response could not be read".into(),
            })
        })?;
    let v = parse_json_or_form(&String::from_utf8_lossy(&body));
    match refusal(status, v.get("error").and_then(Value::as_str)) {
        Some(e) => Err(e),
        None => Ok(v),
    }
}

/// The provider's token endpoint and the client authentication it takes, as its sign-in uses them: the
/// catalogue's resolution of the provider (a preset's own endpoint and method, a custom provider's `-token_path`
/// and `-token_sent_via`, an OpenID Connect issuer's discovered endpoint) with the first credential.
async fn token_request(
    s: &AppState,
    p: &Provider,
    form: &mut Vec<(&'static str, String)>,
) -> Result<reqwest::RequestBuilder, RefreshError> {
    let (p, _) = super::oidc::resolve(s, p.clone())
        .await
        .map_err(RefreshError::Unavailable)?;
    let up = catalogue::resolve(&p).map_err(RefreshError::Unavailable)?;
    let secret = crate::core::provider::client_secret(&s.sealer, &p)
        .map_err(|_| RefreshError::Unavailable("the provider secret cannot be read".into()))?
        .unwrap_or_default();
    let secret = super::apple::token_secret(s, &p, up.client_auth, secret)
        .map_err(RefreshError::Unavailable)?;
    let req = s.http.post(&up.token_url);
    Ok(match up.client_auth {
        ClientAuth::Basic => req.basic_auth(enc(p.client_id()), Some(enc(&secret))),
        ClientAuth::Post | ClientAuth::AppleJwt => {
            form.push(("client_id", p.client_id().to_owned()));
            form.push(("client_secret", secret));
            req
        }
    })
}

/// Why an answer is not a token response: by its OAuth `error` (RFC 6749 §5.2) when it has one, else by status.
/// As Stack does, only `invalid_client` blames the configuration and only the transient errors are retryable;
/// every other error means the refresh token is no longer accepted.
fn refusal(status: reqwest::StatusCode, error: Option<&str>) -> Option<RefreshError> {
    match error {
        Some("invalid_client") => Some(RefreshError::InvalidClient),
        Some(e @ ("temporarily_unavailable" | "server_error")) => {
            Some(RefreshError::Unavailable(format!(
                "the token endpoint answered {}",
                super::clip(e, super::MAX_UPSTREAM_TEXT)
            )))
        }
        Some(_) => Some(RefreshError::Rejected),
        None if status.is_success() => None,
        None if status == reqwest::StatusCode::UNAUTHORIZED => Some(RefreshError::InvalidClient),
        None if status.is_client_error() => Some(RefreshError::Rejected),
        None => Some(RefreshError::Unavailable(format!(
            "the token endpoint answered {status}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode as S;

    #[test]
    fn answers_are_classified_as_stack_does() {
        assert_eq!(refusal(S::OK, None), None);
        assert_eq!(
            refusal(S::BAD_REQUEST, Some("invalid_grant")),
            Some(RefreshError::Rejected)
        );
        assert_eq!(
            refusal(S::BAD_REQUEST, Some("unauthorized_client")),
            Some(RefreshError::Rejected)
        );
        assert_eq!(
            refusal(S::OK, Some("access_denied")),
            Some(RefreshError::Rejected)
        );
        assert_eq!(
            refusal(S::UNAUTHORIZED, Some("invalid_client")),
            Some(RefreshError::InvalidClient)
        );
        assert_eq!(
            refusal(S::UNAUTHORIZED, None),
            Some(RefreshError::InvalidClient)
        );
        assert!(matches!(
            refusal(S::BAD_GATEWAY, None),
            Some(RefreshError::Unavailable(_))
        ));
        assert!(matches!(
            refusal(S::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")),
            Some(RefreshError::Unavailable(_))
        ));
        assert!(matches!(
            refusal(S::FOUND, None),
            Some(RefreshError::Unavailable(_))
        ));
    }
}
