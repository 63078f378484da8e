//! `GET/POST /oauth/logout`, the `end_session_endpoint` (OpenID Connect RP-Initiated Logout 1.0): a relying party
//! sends the browser here to end the user's session at Latchkey, and may ask to have it sent back.
//!
//! - `id_token_hint` ([`IdTokenHint`]) must be an ID token of this server (expired ones too); `client_id`, when
//!   given with it, must be one of its audiences. Either names the client.
//! - `post_logout_redirect_uri` needs that client and must be one of its `post_logout_redirect_uris`, byte for byte;
//!   the browser goes back there with `state`. Without it, a "signed out" page.
//! - The session ends at once only when the request proves the relying party knows it: a valid hint naming the
//!   signed-in user (and its `sid`). Else the user confirms on a page whose form carries a CSRF token, so a
//!   cross-site link cannot sign anyone out.
//! - `logout_hint` and `ui_locales` are accepted and not acted on.
//!
//! Bad input gets an error page and changes nothing; nothing ever redirects to an unregistered URI.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use url::Url;

use super::id_token_hint::IdTokenHint;
use super::params::{ParamError, Params};
use crate::core::session as login;
use crate::model::App;
use crate::state::AppState;
use crate::web::csrf;
use crate::web::pages::{
    error_page, failure_page, html, see_other, server_error, LogoutPage, PageBody, SignedOutPage,
};
use crate::web::session::{clear_login_cookie, current_user};

/// Form fields of the confirmation page that are not logout parameters.
const PAGE_FIELDS: [&str; 2] = ["csrf", "decision"];

/// The confirmation page's one decision.
const CONFIRM: &str = "logout";

pub async fn logout_get(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match Params::parse(q.as_deref().unwrap_or("").as_bytes()) {
        Ok(params) => run(&s, &headers, params, Via::Get).await,
        Err(e) => malformed(e),
    }
}

/// A relying party's form post, or the confirmation page's.
pub async fn logout_post(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    PageBody(body): PageBody,
) -> Response {
    if q.is_some_and(|q| !q.is_empty()) {
        return bad_request("Send the sign-out form in the request body only.");
    }
    let mut params = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e),
    };
    let csrf_token = params.remove("csrf");
    let via = match params.remove("decision").as_deref() {
        None => Via::Post,
        Some(CONFIRM) if csrf::verify(&s, &headers, csrf_token.as_deref()) => Via::Confirmed,
        Some(CONFIRM) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Request expired",
                "This sign-out form has expired or did not come from this site. You are still signed in.",
            )
        }
        Some(_) => return bad_request("Unknown decision."),
    };
    run(&s, &headers, params, via).await
}

/// How the request came.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Get,
    /// A form post of a relying party (cross-site: the browser may withhold the `SameSite=Lax` session cookie).
    Post,
    /// The confirmation page's form, with its CSRF token verified.
    Confirmed,
}

/// A valid logout request: the client it came from, if known, and where to go afterwards.
struct EndSession {
    app: Option<Arc<App>>,
    hint: Option<IdTokenHint>,
    /// The registered `post_logout_redirect_uri` with `state`.
    back_to: Option<String>,
}

async fn run(s: &AppState, headers: &HeaderMap, params: Params, via: Via) -> Response {
    let req = match EndSession::validate(s, &params).await {
        Ok(r) => r,
        Err(Refused::Invalid(why)) => return bad_request(why),
        Err(Refused::Server) => return server_error(),
    };
    let browser = current_user(s, headers).await;
    let proven = match (&browser, &req.hint, &req.app) {
        (Some(b), Some(hint), Some(app)) => hint.names_session(s, app, &b.user.id, &b.sid),
        _ => false,
    };
    match browser {
        Some(b) if proven || via == Via::Confirmed => {
            if let Err(e) = login::logout(&s.store, &b.token).await {
                return failure_page(&e);
            }
            signed_out(s, &req)
        }
        Some(b) => confirm(s, headers, &req, &params, Some(&b.user.username)),
        // A cross-site post carries no session cookie even when there is a session: confirm on this site.
        None if via == Via::Post => confirm(s, headers, &req, &params, None),
        None => signed_out(s, &req),
    }
}

/// Why a request is refused: bad input (the page says what is wrong), or the server's failure.
enum Refused {
    Invalid(&'static str),
    Server,
}

impl EndSession {
    /// Checks the parameters.
    async fn validate(s: &AppState, params: &Params) -> Result<Self, Refused> {
        let hint = match params.get("id_token_hint") {
            None => None,
            Some(token) => Some(IdTokenHint::verify(s, token).ok_or(Refused::Invalid(
                "The id_token_hint is not an ID token issued by this server.",
            ))?),
        };
        let client_id = match (params.get("client_id"), &hint) {
            (Some(c), Some(h)) if !h.names_client(c) => {
                return Err(Refused::Invalid(
                    "The client_id is not the audience of the id_token_hint.",
                ))
            }
            (Some(c), _) => Some(c),
            (None, h) => h.as_ref().and_then(IdTokenHint::client_id),
        };
        let app = match client_id {
            None => None,
            Some(c) => match s.store.client_app(c).await {
                Ok(Some(app)) if app.active => Some(app),
                Ok(_) => return Err(Refused::Invalid("The application is unknown or disabled.")),
                Err(_) => return Err(Refused::Server),
            },
        };
        let back_to = match (params.get("post_logout_redirect_uri"), &app) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Refused::Invalid(
                    "A post_logout_redirect_uri needs the client_id or an id_token_hint.",
                ))
            }
            (Some(uri), Some(app)) => Some(back_to(
                &app.oidc.post_logout_redirect_uris,
                uri,
                params.get("state"),
            )?),
        };
        Ok(Self { app, hint, back_to })
    }
}

/// `uri` with `state`, when it is one of the `registered` post-logout redirect URIs, byte for byte (no
/// normalization: what the client registered is the only place the browser may go).
fn back_to(registered: &[String], uri: &str, state: Option<&str>) -> Result<String, Refused> {
    if !registered.iter().any(|r| r == uri) {
        return Err(Refused::Invalid(
            "The post_logout_redirect_uri is not registered for this application.",
        ));
    }
    let Some(state) = state else {
        return Ok(uri.to_owned());
    };
    // Registered URIs were validated as absolute URLs; one that no longer parses is the server's fault.
    let mut url = Url::parse(uri).map_err(|_| Refused::Server)?;
    url.query_pairs_mut().append_pair("state", state);
    Ok(url.into())
}

/// The end: back to the relying party, or the "signed out" page; the session cookie is cleared either way.
fn signed_out(s: &AppState, req: &EndSession) -> Response {
    let clear = clear_login_cookie(s);
    match &req.back_to {
        Some(uri) => see_other(uri, vec![clear]),
        None => {
            let page = SignedOutPage {
                app_name: req.app.as_ref().map(|a| a.name.as_str()),
            };
            html(StatusCode::OK, askama::Template::render(&page), Some(clear))
        }
    }
}

/// The confirmation page: the request's parameters in hidden fields, posted back with the CSRF token.
fn confirm(
    s: &AppState,
    headers: &HeaderMap,
    req: &EndSession,
    params: &Params,
    username: Option<&str>,
) -> Response {
    let (token, cookie) = csrf::token(s, headers);
    let page = LogoutPage {
        csrf: &token,
        decision: CONFIRM,
        username,
        app_name: req.app.as_ref().map(|a| a.name.as_str()),
        hidden: params
            .iter()
            .filter(|(k, _)| !PAGE_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    html(StatusCode::OK, askama::Template::render(&page), cookie)
}

fn malformed(e: ParamError) -> Response {
    bad_request(&format!("The sign-out request is malformed: {}.", e.0))
}

fn bad_request(msg: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Invalid sign-out request", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back(uri: &str, state: Option<&str>) -> Result<String, &'static str> {
        let registered = [
            "https://rp.example/bye".to_owned(),
            "https://rp.example/out?from=op".to_owned(),
        ];
        back_to(&registered, uri, state).map_err(|e| match e {
            Refused::Invalid(why) => why,
            Refused::Server => "server",
        })
    }

    #[test]
    fn only_a_registered_uri_byte_for_byte_is_a_way_back_and_state_rides_along() {
        assert_eq!(
            back("https://rp.example/bye", None).unwrap(),
            "https://rp.example/bye"
        );
        assert_eq!(
            back("https://rp.example/bye", Some("a b&c")).unwrap(),
            "https://rp.example/bye?state=a+b%26c"
        );
        assert_eq!(
            back("https://rp.example/out?from=op", Some("s")).unwrap(),
            "https://rp.example/out?from=op&state=s"
        );
        for near in [
            "https://rp.example/bye/",
            "https://RP.example/bye",
            "https://rp.example/bye?x=1",
            "https://rp.example/bye#f",
            "http://rp.example/bye",
            "https://rp.example/out",
        ] {
            assert!(
                back(near, Some("s"))
                    .unwrap_err()
                    .contains("not registered"),
                "{near}"
            );
        }
    }
}
