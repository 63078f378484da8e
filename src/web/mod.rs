//! Server-rendered pages: sign-in, consent and errors (askama templates), the browser session cookie, CSRF and
//! the strict form parser: the browser plumbing OAuth and federated sign-in share, knowing neither.

pub mod buttons;
pub mod csrf;
pub mod form;
pub mod pages;
pub mod session;

use axum::http::Method;

use crate::state::AppState;
use crate::wire::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(Method::GET, "/login", pages::login_page)
        .route(Method::POST, "/login", pages::login_submit)
        .route(Method::POST, "/logout", pages::logout)
        .route(Method::GET, "/dev/callback", pages::dev_callback)
}
