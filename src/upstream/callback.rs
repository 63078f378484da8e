//! `GET /_oauth/<service>?code&state`, or `POST` with the same parameters in a form for an upstream that answers
//! by form_post (Apple): finishes a federated sign-in. Every failure ends on an error page that says what failed,
//! and leaves the store as it was.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::exchange::{clip, exchange, fetch_json};
use super::{apple, identity, oidc};
use super::{cookie_name, open_pending};
use crate::core::{federation, session};
use crate::crypto;
use crate::error::Error;
use crate::model::catalogue::ResponseMode;
use crate::model::oidc::Amr;
use crate::model::{catalogue, Provider};
use crate::state::AppState;
use crate::web::form::Params;
use crate::web::pages::{error_page, see_other, PageBody};
use crate::web::session::{login_cookie, read_cookie, set_cookie};

/// Why a sign-in failed, worded for the person in front of the browser.
pub(super) struct Failure(pub StatusCode, pub String);

impl Failure {
    pub(super) fn upstream(what: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_GATEWAY, what.into())
    }
    fn request(what: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_REQUEST, what.into())
    }
    /// `name` did not answer within `deadline`.
    pub(super) fn timeout(name: &str, deadline: std::time::Duration) -> Self {
        Failure(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "{name} did not answer within {:.1} s; try again later",
                deadline.as_secs_f64()
            ),
        )
    }
}

pub async fn callback(
    State(s): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    respond(s, &service, &headers, &q, ResponseMode::Query).await
}

/// The form_post response mode: the upstream's page posts the parameters (and Apple's `user`), in a body bounded
/// and parsed like every page form.
pub async fn callback_post(
    State(s): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
    PageBody(body): PageBody,
) -> Response {
    let Ok(form) = Params::parse(&body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The answer of the sign-in provider could not be read.",
        );
    };
    let q = form.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    respond(s, &service, &headers, &q, ResponseMode::FormPost).await
}

async fn respond(
    s: AppState,
    service: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    came_by: ResponseMode,
) -> Response {
    let clear = set_cookie(&s, &cookie_name(&s), "", 0);
    match finish(&s, service, headers, q, came_by).await {
        Ok((token, return_to)) => see_other(&return_to, vec![clear, login_cookie(&s, &token)]),
        Err(Failure(status, why)) => {
            tracing::warn!(service = %super::for_log(service), reason = %super::for_log(&why), "federated sign-in failed");
            let mut r = error_page(status, "Sign-in failed", &why);
            r.headers_mut()
                .append(axum::http::header::SET_COOKIE, clear);
            r
        }
    }
}

async fn finish(
    s: &AppState,
    service: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    came_by: ResponseMode,
) -> Result<(String, String), Failure> {
    let provider = match s.store.get_provider(service).await {
        Ok(Some(p)) if p.enabled => p,
        Ok(_) => {
            return Err(Failure::request(format!(
                "no enabled sign-in provider is called {service:?}"
            )))
        }
        Err(_) => {
            return Err(Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ))
        }
    };
    let name = provider.name.clone();
    let pending = read_cookie(headers, &cookie_name(s))
        .and_then(|c| open_pending(s, &c))
        .ok_or_else(|| {
            Failure::request(
                "this sign-in was not started in this browser, or it expired; start again",
            )
        })?;
    // OAuth 1.0a has no `state`: the request token it hands back (`denied` on refusal) stands for it.
    let oauth1 = super::oauth1::applies(&provider);
    let (param, echoed) = if oauth1 {
        (
            "oauth_token",
            q.get("oauth_token").or_else(|| q.get("denied")),
        )
    } else {
        ("state", q.get("state"))
    };
    let state_ok = echoed.is_some_and(|st| crypto::ct_eq(st.as_bytes(), pending.state.as_bytes()));
    if !state_ok || pending.service != service {
        return Err(Failure::request(format!(
            "the {param} parameter does not match this sign-in; start again"
        )));
    }
    if pending.expires_at <= s.clock.now_ms() {
        return Err(Failure::request("this sign-in took too long; start again"));
    }
    if oauth1 {
        let ident = super::oauth1::finish(s, &provider, &pending, q).await?;
        return signed_in(s, &provider, &ident, Vec::new(), pending.return_to).await;
    }
    let (provider, oidc) = oidc::resolve(s, provider)
        .await
        .map_err(|e| Failure::upstream(format!("{name}: {e}")))?;
    if let Some(d) = &oidc {
        oidc::check_response_iss(d, q.get("iss"))
            .map_err(|e| Failure::upstream(format!("{name}: {e}")))?;
    }
    if let Some(err) = q.get("error") {
        let desc = q
            .get("error_description")
            .map(|d| format!(" ({})", clip(d)))
            .unwrap_or_default();
        return Err(Failure::upstream(format!(
            "{name} answered {}{desc}",
            clip(err)
        )));
    }
    let code = q
        .get("code")
        .ok_or_else(|| Failure::upstream(format!("{name} sent no authorization code")))?;

    let mut up = catalogue::resolve(&provider).map_err(Failure::upstream)?;
    // A code must come the way the start asked for it: Apple's by POST only, every other by redirect.
    if came_by != up.response_mode {
        return Err(Failure::request(format!(
            "{name} answers by {}, not by {}; start again",
            method_of(up.response_mode),
            method_of(came_by)
        )));
    }
    // As at the start: an OpenID Connect issuer has PKCE only when its discovery document offers S256.
    up.pkce &= oidc.as_ref().is_none_or(|d| d.pkce());
    let deadline = super::deadline(&s.config);
    let (tokens, doc, emails) = tokio::time::timeout(deadline, async {
        let tokens = exchange(s, &provider, &up, code, &pending.verifier).await?;
        let access = tokens
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Failure::upstream(format!("{name}'s token response has no access_token"))
            })?
            .to_owned();
        let identity = |url| fetch_json(s, &provider, &up, url, "identity", &access);
        let doc = match &oidc {
            None => identity(&up.identity_url).await?,
            Some(d) => {
                let nonce = pending.nonce.as_deref().unwrap_or_default();
                let claims = oidc::verify_id_token(s, d, &provider, &tokens, nonce).await;
                let claims = claims.map_err(|e| Failure::upstream(format!("{name}: {e}")))?;
                let info = match d.userinfo_endpoint {
                    Some(_) => Some(identity(&up.identity_url).await?),
                    None => None,
                };
                let mut doc = oidc::identity(claims, info)
                    .map_err(|e| Failure::upstream(format!("{name}: {e}")))?;
                // Apple's name, posted on first consent only; later sign-ins keep the user's name as it is.
                if came_by == ResponseMode::FormPost {
                    apple::add_posted_name(&mut doc, q.get("user"));
                }
                doc
            }
        };
        let emails = match &up.emails {
            Some((url, _)) => Some(fetch_json(s, &provider, &up, url, "emails", &access).await?),
            None => None,
        };
        Ok((tokens, doc, emails))
    })
    .await
    .map_err(|_| Failure::timeout(&name, deadline))??;
    let ident = identity::map(&doc, &up, emails.as_ref())
        .map_err(|e| Failure::upstream(format!("{name}: {e}")))?;
    let sealed = super::tokens::seal_response(&s.sealer, s.clock.now_ms(), &tokens, &up.scope)
        .unwrap_or_default();
    signed_in(s, &provider, &ident, sealed, pending.return_to).await
}

/// The link or user for `ident` (with the upstream's token set `sealed`, empty when none is kept), and a login
/// token for the browser: `(token, return_to)`.
async fn signed_in(
    s: &AppState,
    provider: &Provider,
    ident: &identity::Identity,
    sealed: Vec<u8>,
    return_to: String,
) -> Result<(String, String), Failure> {
    let name = &provider.name;
    let user = federation::sign_in(&s.store, &s.clock, provider, ident, sealed)
        .await
        .map_err(|e| match e {
            Error::Conflict { field, value } => Failure::request(format!(
                "cannot create a local account: {} {value} is taken",
                crate::web::pages::field_name(field)
            )),
            Error::NotAllowed(why) => Failure(
                StatusCode::FORBIDDEN,
                format!("{name} cannot sign you in here: {why}"),
            ),
            Error::Invalid { reason, .. } => {
                Failure::upstream(format!("{name}'s identity is not usable: {reason}"))
            }
            _ => Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
        })?;
    let token = session::issue_login_token(s.login_tokens(), &user, vec![Amr::Fed])
        .await
        .map_err(|_| Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    Ok((token, return_to))
}

fn method_of(mode: ResponseMode) -> &'static str {
    match mode {
        ResponseMode::Query => "redirect (GET)",
        ResponseMode::FormPost => "form post (POST)",
    }
}
