//! Server-rendered pages: sign-in, consent and errors (askama templates), the browser session cookie and CSRF.

pub mod csrf;
pub mod pages;
pub mod session;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/dev/callback", get(pages::dev_callback))
}
