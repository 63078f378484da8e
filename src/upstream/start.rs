//! `GET /login/<service>?return_to=…`: redirect to the upstream's authorization endpoint with state, and PKCE
//! when the upstream takes it (custom providers always; presets as their entry says); OAuth 1.0a's first leg is
//! `oauth1::start`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{pending_cookie, seal_pending, Pending};
use crate::crypto;
use crate::model::catalogue::{self, ClientAuth, ResponseMode};
use crate::state::AppState;
use crate::web::pages::{error_page, safe_return_to, see_other, server_error};

/// How long a started sign-in may take at the upstream.
pub(super) const PENDING_TTL_MS: i64 = 10 * 60 * 1000;

pub async fn start(
    State(s): State<AppState>,
    Path(service): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let provider = match s.store.get_provider(&service).await {
        Ok(Some(p)) if p.enabled => p,
        Ok(_) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Unknown sign-in provider",
                &format!("No enabled provider is called {service:?}."),
            )
        }
        Err(_) => return server_error(),
    };
    if let Err(why) = catalogue::resolve(&provider) {
        return error_page(StatusCode::BAD_GATEWAY, "Provider not configured", &why);
    }
    let return_to = safe_return_to(q.get("return_to").map(String::as_str));
    if super::oauth1::applies(&provider) {
        return super::oauth1::start(&s, &provider, &service, return_to).await;
    }
    let (provider, oidc) = match super::oidc::resolve(&s, provider).await {
        Ok(resolved) => resolved,
        Err(why) => return error_page(StatusCode::BAD_GATEWAY, "Provider not reachable", &why),
    };
    let up = match catalogue::resolve(&provider) {
        Ok(up) => up,
        Err(why) => return error_page(StatusCode::BAD_GATEWAY, "Provider not configured", &why),
    };
    // Apple's client secret is built (and kept) now, so that settings it cannot be built from fail here, before
    // the user consents at Apple.
    if up.client_auth == ClientAuth::AppleJwt {
        let Ok(key) = crate::core::provider::client_secret(&s.sealer, &provider) else {
            return server_error();
        };
        let key = key.unwrap_or_default();
        if let Err(why) = super::apple::client_secret(&s, &provider, &key) {
            return error_page(StatusCode::BAD_GATEWAY, "Provider not configured", &why);
        }
    }
    let Ok(mut url) = url::Url::parse(&up.authorize_url) else {
        return error_page(
            StatusCode::BAD_GATEWAY,
            "Provider not configured",
            &format!("{} has an invalid authorize URL.", provider.name),
        );
    };
    let pending = Pending {
        service: service.clone(),
        state: crypto::random_token(),
        verifier: crypto::random_token(),
        return_to,
        expires_at: s.clock.now_ms() + PENDING_TTL_MS,
        nonce: oidc.as_ref().map(|_| crypto::random_token()),
    };
    let Ok((redirect_uri, state)) = super::proxy::redirect(&s, &service, &pending.state).await
    else {
        return server_error();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", provider.client_id())
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &up.scope)
            .append_pair("state", &state);
        // An OpenID Connect issuer gets PKCE when its discovery document offers S256.
        if up.pkce && oidc.as_ref().is_none_or(|d| d.pkce()) {
            let challenge = crypto::secret::b64url(&crypto::sha256(pending.verifier.as_bytes()));
            q.append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(nonce) = &pending.nonce {
            q.append_pair("nonce", nonce);
        }
        if up.response_mode == ResponseMode::FormPost {
            q.append_pair("response_mode", "form_post");
        }
    }
    to_upstream(
        &s,
        &url,
        &pending,
        up.response_mode == ResponseMode::FormPost,
    )
}

/// The browser to the upstream at `url`, with `pending` sealed in its cookie (one that survives Apple's
/// cross-site form_post when `form_post`).
pub(super) fn to_upstream(
    s: &AppState,
    url: &url::Url,
    pending: &Pending,
    form_post: bool,
) -> Response {
    let cookie = pending_cookie(
        s,
        &seal_pending(s, pending),
        PENDING_TTL_MS / 1000,
        form_post,
    );
    see_other(url.as_str(), vec![cookie])
}
