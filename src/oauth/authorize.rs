//! `GET/POST /oauth/authorize`: the authorization code flow through the sign-in and consent pages.
//!
//! Every request re-runs oxide-auth's authorization flow over the parameters (they travel in the URL and the
//! consent form's hidden inputs), so no server-side state is kept between the pages. Errors before the client and
//! redirect URI are known end on an error page; after, they redirect with `error`, `state` and `iss`. The OpenID
//! Connect parameters are read in `oidc.rs` (`id_token_hint` here: it is verified against the signing keys); a
//! demanded fresh sign-in is carried across the sign-in page by the sealed parameter of `fresh.rs`.

mod fresh;
mod oidc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use oxide_auth::code_grant::authorization::{self, Pending};
use url::Url;

use super::flow::FlowRequest;
use super::id_token_hint::IdTokenHint;
use super::outcome::Outcome;
use super::params::Params;
use super::primitives::Backend;
use crate::clock::Millis;
use crate::model::app::API_SCOPE;
use crate::model::{redirect, App};
use crate::state::AppState;
use crate::web::pages::{
    error_page, failure_page, html, login_form, see_other, server_error, ConsentPage, PageBody,
};
use crate::web::{csrf, session};
use oidc::{OidcRequest, Refusal};

/// Form fields of the consent page that are not OAuth parameters.
const PAGE_FIELDS: [&str; 2] = ["csrf", "decision"];

pub async fn authorize_get(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let params = match Params::parse(q.as_deref().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(e) => return malformed(e),
    };
    run(&s, &headers, params, None).await
}

pub async fn authorize_post(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    PageBody(body): PageBody,
) -> Response {
    if q.is_some_and(|q| !q.is_empty()) {
        return bad_request("Send the authorization form in the request body only.");
    }
    let mut params = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e),
    };
    let csrf_token = params.remove("csrf");
    let decision = params.remove("decision");
    if decision.is_some() && !csrf::verify(&s, &headers, csrf_token.as_deref()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Request expired",
            "This form has expired. Go back to the application and start again.",
        );
    }
    run(&s, &headers, params, decision.as_deref()).await
}

/// A query or form that does not parse (repeated, too many, or badly encoded parameters).
fn malformed(e: super::params::ParamError) -> Response {
    bad_request(&format!("The authorization request is malformed: {}.", e.0))
}

fn bad_request(msg: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid authorization request",
        msg,
    )
}

/// Adds RFC 9207's `iss` to an authorization response.
fn with_iss(mut url: Url, issuer: &str) -> String {
    url.query_pairs_mut().append_pair("iss", issuer);
    url.to_string()
}

async fn run(
    s: &AppState,
    headers: &HeaderMap,
    params: Params,
    decision: Option<&str>,
) -> Response {
    // 1. Client and redirect URI: until both are known good, errors must not redirect anywhere.
    let Some(client_id) = params.get("client_id") else {
        return bad_request("The request has no client_id.");
    };
    let app = match s.store.client_app(client_id).await {
        Ok(Some(app)) if app.active => app,
        Ok(_) => return bad_request("The application is unknown or disabled."),
        Err(_) => return server_error(),
    };
    match params.get("redirect_uri") {
        Some(r)
            if !app
                .redirect_uris
                .iter()
                .any(|reg| redirect::matches(reg, r)) =>
        {
            return bad_request("The redirect_uri is not registered for this application.")
        }
        None if app.redirect_uris.len() != 1 => {
            return bad_request(
                "This application registers several redirect URIs; the request must name one.",
            )
        }
        _ => {}
    }

    // 2. oxide-auth validates the rest (response_type, scope, PKCE) and binds the pre-grant.
    let mut backend = Backend::new(s, &app);
    backend.redirect_uri_sent = params.contains("redirect_uri");
    let req = FlowRequest {
        params: &params,
        client_id: &app.client_id,
        secret: None,
        redirect_fallback: None,
    };
    let pending = match authorization::authorization_code(&mut backend, &req) {
        Ok(p) => p,
        Err(e) => return flow_error(s, e),
    };
    let refuse = |r: Refusal| refusal(s, &pending, &params, r);

    // 3. What OpenID Connect asks of the sign-in and the consent.
    let oidc = match OidcRequest::parse(&params) {
        Ok(o) => o,
        Err(r) => return refuse(r),
    };
    let hint = match params
        .get("id_token_hint")
        .map(|t| IdTokenHint::verify(s, t).filter(|h| h.names_client(&app.client_id)))
    {
        None => None,
        Some(Some(hint)) => Some(hint),
        Some(None) => return refuse(BAD_HINT),
    };
    let fresh = match params
        .get(fresh::PARAM)
        .map(|v| fresh::open(s, &app.client_id, v))
    {
        None => None,
        Some(Some(start)) => Some(start),
        Some(None) => return refuse(STALE),
    };

    // 4. The resource owner: signed in, recently enough?
    let now = s.clock.now_ms();
    let browser = session::current_user(s, headers)
        .await
        .filter(|b| oidc.accepts_sign_in(b.signed_in_at, fresh, now));
    let Some(browser) = browser else {
        if oidc.prompt.none {
            return refuse(Refusal {
                error: "login_required",
                description: "the user is not signed in, or not recently enough",
            });
        }
        return sign_in_first(s, headers, &app, &params, &oidc, fresh, now).await;
    };
    // `prompt=none` cannot ask who should sign in: a hint naming another user than the signed-in one is refused.
    if oidc.prompt.none && hint.is_some_and(|h| !h.names_user(s, &app, &browser.user.id)) {
        return refuse(Refusal {
            error: "login_required",
            description: "the signed-in user is not the one the id_token_hint names",
        });
    }
    let user = browser.user;

    // 5. Consent: skipped for trusted apps unless `prompt=consent`, else asked once per request.
    let trusted = !oidc.prompt.consent && (app.skip_consent || dev_trusted(s, &app));
    let approved = match decision {
        Some("allow") => true,
        Some("deny") => return flow_error(s, pending.deny().unwrap_err()),
        Some(_) => return bad_request("Unknown decision."),
        None if trusted => true,
        None if oidc.prompt.none => {
            return refuse(Refusal {
                error: "consent_required",
                description: "the user has not approved this request",
            })
        }
        None => false,
    };
    if !approved {
        return consent(s, headers, &app, &user.username, &params, &pending);
    }
    backend.auth_time = Some(browser.signed_in_at);
    backend.nonce = oidc.nonce;
    backend.amr = browser.amr;
    backend.sid = Some(browser.sid);
    let url = match pending.authorize(&mut backend, user.id.as_str().into()) {
        Ok(url) => url,
        Err(e) => return flow_error(s, e),
    };
    // The code the flow made is stored (durably) before the redirect hands it out.
    let Outcome::Code { digest, record } = backend.finish(Ok(())) else {
        return server_error();
    };
    match s.store.put_code(&digest, &record).await {
        Ok(()) => see_other(&with_iss(url, &s.issuer), vec![]),
        Err(e) => failure_page(&e),
    }
}

/// An `id_token_hint` that is not an ID token of this server for this client.
const BAD_HINT: Refusal = Refusal {
    error: "invalid_request",
    description: "the id_token_hint is not an ID token issued by this server to this client",
};

/// A freshness parameter that is forged, of another client or stale.
const STALE: Refusal = Refusal {
    error: "invalid_request",
    description: "the sign-in took too long or the request was altered; start again",
};

/// The sign-in page, returning here. When the request demands a fresh sign-in, the return URL carries the sealed
/// time the request started, so that the sign-in made then satisfies it (and `prompt=login` does not loop).
async fn sign_in_first(
    s: &AppState,
    headers: &HeaderMap,
    app: &App,
    params: &Params,
    oidc: &OidcRequest,
    fresh: Option<Millis>,
    now: Millis,
) -> Response {
    let mut return_to = format!("/oauth/authorize?{}", params.to_query());
    if fresh.is_none() && oidc.demands_fresh_sign_in() {
        let sealed = fresh::seal(s, &app.client_id, now);
        return_to.push_str(&format!("&{}={sealed}", fresh::PARAM));
    }
    let hint = oidc.login_hint.as_deref();
    login_form(s, headers, &return_to, Some(&app.name), None, hint).await
}

/// An error redirect to the bound redirect URI, with `state` and `iss`; nothing was written.
fn refusal(s: &AppState, pending: &Pending, params: &Params, r: Refusal) -> Response {
    let Ok(mut url) = Url::parse(&pending.pre_grant().redirect_uri.to_string()) else {
        return server_error();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", r.error)
            .append_pair("error_description", r.description);
        if let Some(state) = params.get("state") {
            q.append_pair("state", state);
        }
    }
    see_other(&with_iss(url, &s.issuer), vec![])
}

/// `--dev` skips consent for its demo client.
fn dev_trusted(s: &AppState, app: &App) -> bool {
    s.config.dev && app.client_id == crate::core::bootstrap::DEV_CLIENT_ID
}

fn consent(
    s: &AppState,
    headers: &HeaderMap,
    app: &App,
    username: &str,
    params: &Params,
    pending: &Pending,
) -> Response {
    let (token, cookie) = csrf::token(s, headers);
    let pre = pending.pre_grant();
    let redirect_host = Url::parse(&pre.redirect_uri.to_string())
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(str::to_owned)
                .or_else(|| Some(u.scheme().to_owned()))
        })
        .unwrap_or_default();
    let hidden = params
        .iter()
        .filter(|(k, _)| !PAGE_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let page = ConsentPage {
        csrf: &token,
        app_name: &app.name,
        username,
        scopes: {
            let mut v: Vec<(String, &'static str)> = pre
                .scope
                .iter()
                .map(|t| (t.to_owned(), scope_meaning(t)))
                .collect();
            v.sort();
            v
        },
        hidden,
        redirect_host,
    };
    html(StatusCode::OK, askama::Template::render(&page), cookie)
}

/// What a well-known scope lets the app do, in words for the consent page.
fn scope_meaning(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Stay connected when you are away (refresh tokens)",
        API_SCOPE => "Act as you on this server's admin APIs: everything your account may do there (for an admin: create users and admins, manage apps and sign-in providers)",
        _ => "",
    }
}

fn flow_error(s: &AppState, e: authorization::Error) -> Response {
    match e {
        authorization::Error::Redirect(err) => see_other(&with_iss(err.into(), &s.issuer), vec![]),
        authorization::Error::Ignore => {
            bad_request("The application or its redirect URI is not valid.")
        }
        authorization::Error::PrimitiveError => server_error(),
    }
}
