//! Rocket.Chat's Twitter sign-in: OAuth 1.0a (RFC 5849) with HMAC-SHA1, in the three legs of Meteor's
//! `twitter-oauth`. `GET /login/twitter` gets a request token for our callback (§2.1) and sends the browser to
//! the upstream's authenticate page with it; `GET /_oauth/twitter?oauth_token&oauth_verifier` (or `?denied=` on
//! refusal) trades it for an access token (§2.3), which signs the identity request.
//!
//! OAuth 1.0a has no `state`: the request token stands for it. The sealed pending cookie carries the token (in
//! `Pending::state`, which the callback's `oauth_token` must equal) and its secret (in `Pending::verifier`, the
//! secret half of the key that signs the access token request), so the callback binds to the browser that
//! started the sign-in. No token of the upstream is kept after the sign-in.

use std::collections::HashMap;
use std::future::Future;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use sha1::Sha1;
use url::Url;

use super::callback::Failure;
use super::exchange::body;
use super::identity::{self, Identity};
use super::start::{to_upstream, PENDING_TTL_MS};
use super::Pending;
use crate::crypto;
use crate::model::catalogue::{self, Protocol};
use crate::model::Provider;
use crate::state::AppState;
use crate::web::pages::error_page;

/// Whether provider `p` signs in over OAuth 1.0a: its preset says so.
pub fn applies(p: &Provider) -> bool {
    p.preset
        .as_deref()
        .and_then(catalogue::find)
        .is_some_and(|e| matches!(e.protocol, Protocol::OAuth1 { .. }))
}

/// RFC 5849 §3.6: every UTF-8 byte but the unreserved `ALPHA DIGIT - . _ ~` as `%XX` with uppercase hex (not
/// form encoding: a space is `%20`, `*` is encoded).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The signature base string (§3.4.1): the method, the base string URI (scheme and host lowercase, default
/// port dropped, no query) and the normalized parameters: `url`'s query and `params` (the protocol parameters
/// and any form body), each encoded, sorted by name then value.
pub fn base_string(method: &str, url: &Url, params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .chain(params.iter().map(|(k, v)| (encode(k), encode(v))))
        .collect();
    pairs.sort();
    let normalized: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(base.as_str()),
        encode(&normalized.join("&"))
    )
}

/// HMAC-SHA1 (§3.4.2) of `base` under the client secret and the token secret (empty before the first token).
pub fn sign(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Who signs a request (§1.1): the client credentials, and the token credentials once there are some (the
/// request token at the access token leg, the access token after).
pub struct Credentials<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: Option<(&'a str, &'a str)>,
}

/// The `Authorization: OAuth …` value (§3.5.1) of a bodiless request of `method` to `url`: the protocol
/// parameters, `extra` ones (`oauth_callback`, `oauth_verifier`), and the signature over them and `url`'s query.
pub fn authorization(
    c: &Credentials,
    method: &str,
    url: &Url,
    extra: &[(&str, &str)],
    nonce: &str,
    timestamp: i64,
) -> String {
    let timestamp = timestamp.to_string();
    let mut params = vec![
        ("oauth_consumer_key", c.consumer_key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", timestamp.as_str()),
        ("oauth_version", "1.0"),
    ];
    if let Some((token, _)) = c.token {
        params.push(("oauth_token", token));
    }
    params.extend_from_slice(extra);
    let token_secret = c.token.map_or("", |(_, secret)| secret);
    let signature = sign(
        &base_string(method, url, &params),
        c.consumer_secret,
        token_secret,
    );
    params.push(("oauth_signature", &signature));
    let fields: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// `GET /login/<service>` of an OAuth 1.0a provider: the request token for our callback, then the browser to the
/// upstream with it, the token and its secret sealed in the pending cookie.
pub(super) async fn start(
    s: &AppState,
    p: &Provider,
    service: &str,
    return_to: String,
) -> Response {
    let legs = async {
        let up = catalogue::resolve(p).map_err(Failure::upstream)?;
        let consumer = consumer_secret(s, p)?;
        let client = Credentials {
            consumer_key: p.client_id(),
            consumer_secret: &consumer,
            token: None,
        };
        let callback = super::callback_url(s, service);
        let url = up.request_token_url.as_deref().unwrap_or_default();
        let what = "request token";
        let extra = [("oauth_callback", callback.as_str())];
        let req = signed(s, p, &client, Method::POST, url, &extra, what)?;
        let answer = form(s, p, req, what).await?;
        // §2.1: the upstream must confirm that it took our callback.
        if answer.get("oauth_callback_confirmed").map(String::as_str) != Some("true") {
            return Err(Failure::upstream(format!(
                "{}'s request token answer does not confirm the callback",
                p.name
            )));
        }
        let (token, secret) = token_pair(&answer, p, what)?;
        let mut to = Url::parse(&up.authorize_url)
            .map_err(|_| Failure::upstream(format!("{} has an invalid authorize URL", p.name)))?;
        to.query_pairs_mut().append_pair("oauth_token", &token);
        Ok::<_, Failure>((to, token, secret))
    };
    match within(s, p, legs).await {
        Ok((to, token, secret)) => {
            let pending = Pending {
                service: service.to_owned(),
                state: token,
                verifier: secret,
                return_to,
                expires_at: s.clock.now_ms() + PENDING_TTL_MS,
                nonce: None,
            };
            to_upstream(s, &to, &pending, false)
        }
        Err(Failure(status, why)) => {
            tracing::warn!(service = %super::for_log(service), reason = %super::for_log(&why), "federated sign-in failed to start");
            error_page(status, "Provider not reachable", &why)
        }
    }
}

/// The callback's legs once its `oauth_token` matched the pending one: a refusal (`denied`) ends here; else the
/// verifier buys the access token, which signs the identity request.
pub(super) async fn finish(
    s: &AppState,
    p: &Provider,
    pending: &Pending,
    q: &HashMap<String, String>,
) -> Result<Identity, Failure> {
    let name = &p.name;
    if q.contains_key("denied") {
        return Err(Failure::upstream(format!(
            "{name} answered denied: the sign-in was not allowed"
        )));
    }
    let verifier = q
        .get("oauth_verifier")
        .ok_or_else(|| Failure::upstream(format!("{name} sent no oauth_verifier")))?;
    let up = catalogue::resolve(p).map_err(Failure::upstream)?;
    let consumer = consumer_secret(s, p)?;
    within(s, p, async {
        let request = Credentials {
            consumer_key: p.client_id(),
            consumer_secret: &consumer,
            token: Some((&pending.state, &pending.verifier)),
        };
        let what = "access token";
        let extra = [("oauth_verifier", verifier.as_str())];
        let req = signed(s, p, &request, Method::POST, &up.token_url, &extra, what)?;
        let (token, secret) = token_pair(&form(s, p, req, what).await?, p, what)?;
        let access = Credentials {
            token: Some((&token, &secret)),
            ..request
        };
        let req = signed(
            s,
            p,
            &access,
            Method::GET,
            &up.identity_url,
            &[],
            "identity",
        )?;
        let doc = body(s, p, req, "identity").await?;
        let doc: Value = serde_json::from_slice(&doc)
            .map_err(|_| Failure::upstream(format!("{name}'s identity response is not JSON")))?;
        identity::map(&doc, &up, None).map_err(|e| Failure::upstream(format!("{name}: {e}")))
    })
    .await
}

/// The provider's consumer secret (RC's `Accounts_OAuth_Twitter_secret`), unsealed.
fn consumer_secret(s: &AppState, p: &Provider) -> Result<String, Failure> {
    crate::core::provider::client_secret(&s.sealer, p)
        .map(Option::unwrap_or_default)
        .map_err(|_| {
            Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the provider secret cannot be read".into(),
            )
        })
}

/// `legs` within the callback deadline, so a slow upstream ends on the page that says so.
async fn within<T>(
    s: &AppState,
    p: &Provider,
    legs: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let deadline = super::deadline(&s.config);
    tokio::time::timeout(deadline, legs)
        .await
        .map_err(|_| Failure::timeout(&p.name, deadline))?
}

/// A request of `method` to `url` (whose query is signed and sent), signed by `c` with a fresh nonce.
fn signed(
    s: &AppState,
    p: &Provider,
    c: &Credentials,
    method: Method,
    url: &str,
    extra: &[(&str, &str)],
    what: &str,
) -> Result<RequestBuilder, Failure> {
    let parsed = Url::parse(url)
        .map_err(|_| Failure::upstream(format!("{} has an invalid {what} URL", p.name)))?;
    let header = authorization(
        c,
        method.as_str(),
        &parsed,
        extra,
        &crypto::random_token(),
        s.clock.now_ms() / 1000,
    );
    Ok(s.http
        .request(method, parsed)
        .header("authorization", header))
}

/// A token leg's form-encoded answer (§2.1, §2.3).
async fn form(
    s: &AppState,
    p: &Provider,
    req: RequestBuilder,
    what: &str,
) -> Result<HashMap<String, String>, Failure> {
    let body = body(s, p, req, what).await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

/// The `oauth_token` and `oauth_token_secret` of a token leg's answer.
fn token_pair(
    answer: &HashMap<String, String>,
    p: &Provider,
    what: &str,
) -> Result<(String, String), Failure> {
    let get = |k: &str| answer.get(k).filter(|v| !v.is_empty()).cloned();
    get("oauth_token")
        .zip(get("oauth_token_secret"))
        .ok_or_else(|| {
            Failure::upstream(format!(
                "{}'s {what} answer has no oauth_token and oauth_token_secret",
                p.name
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_rfc_5849s_not_forms() {
        assert_eq!(encode("Ladies + Gentlemen"), "Ladies%20%2B%20Gentlemen");
        assert_eq!(encode("a-._~*!'()"), "a-._~%2A%21%27%28%29");
        assert_eq!(encode("é☃"), "%C3%A9%E2%98%83");
    }

    /// RFC 5849 §3.4.1.1's example: query and body parameters, repeated names, encoded names and values.
    #[test]
    fn the_base_string_of_rfc_5849s_example() {
        let url =
            Url::parse("http://EXAMPLE.COM:80/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        let params = [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("c2", ""),
            ("a3", "2 q"),
        ];
        assert_eq!(
            base_string("post", &url, &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    /// Twitter's documented example ("Creating a signature").
    #[test]
    fn twitters_documented_signature() {
        let url =
            Url::parse("https://api.twitter.com/1.1/statuses/update.json?include_entities=true")
                .unwrap();
        let params = [
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ];
        let base = base_string("POST", &url, &params);
        assert!(base.ends_with("%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"), "{base}");
        assert_eq!(
            sign(
                &base,
                "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
            ),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    #[test]
    fn the_header_carries_the_signature_of_its_own_parameters() {
        let c = Credentials {
            consumer_key: "ck",
            consumer_secret: "cs&?",
            token: Some(("tok", "ts")),
        };
        let url = Url::parse("https://api.example/v?include_email=true").unwrap();
        let h = authorization(&c, "GET", &url, &[("oauth_verifier", "v 1")], "n", 7);
        let fields: Vec<(String, String)> = h
            .strip_prefix("OAuth ")
            .unwrap()
            .split(", ")
            .map(|f| {
                let (k, v) = f.split_once('=').unwrap();
                let v = v.trim_matches('"');
                let v = percent_decode(v);
                (k.to_owned(), v)
            })
            .collect();
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("oauth_verifier"), "v 1");
        assert_eq!(get("oauth_token"), "tok");
        let signed: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| k != "oauth_signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            get("oauth_signature"),
            sign(&base_string("GET", &url, &signed), "cs&?", "ts")
        );
    }

    fn percent_decode(s: &str) -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    }
}
