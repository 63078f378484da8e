//! The sealed freshness parameter: how a request that demands a fresh sign-in (`prompt=login`, `max_age`) tells
//! itself, when the browser comes back from the stateless sign-in page, that the sign-in must have happened after
//! the request started. The start time is sealed under the master key and bound to the client, so it cannot be
//! forged or moved to another client, and it is refused once older than [`TTL_MS`] (a stale one would let an old
//! sign-in pass as fresh).

use crate::clock::Millis;
use crate::crypto::secret::{b64url, b64url_decode};
use crate::state::AppState;

/// The parameter the sign-in page's return URL carries.
pub const PARAM: &str = "signed_in_after";

/// How long the sign-in (and the consent after it) may take.
pub const TTL_MS: Millis = 30 * 60 * 1000;

fn aad(client_id: &str) -> Vec<u8> {
    [b"authorize-fresh:".as_slice(), client_id.as_bytes()].concat()
}

/// The parameter's value for a request of `client_id` that started at `start`.
pub fn seal(s: &AppState, client_id: &str, start: Millis) -> String {
    b64url(&s.sealer.seal(start.to_string().as_bytes(), &aad(client_id)))
}

/// The start time, while the value is genuine, of this client and not stale.
pub fn open(s: &AppState, client_id: &str, value: &str) -> Option<Millis> {
    let plain = s.sealer.open(&b64url_decode(value)?, &aad(client_id))?;
    let start: Millis = std::str::from_utf8(&plain).ok()?.parse().ok()?;
    let age = s.clock.now_ms() - start;
    (0..=TTL_MS).contains(&age).then_some(start)
}
