//! The OpenID Connect parameters of an authorization request (OIDC Core §3.1.2.1) and what they demand of the
//! sign-in and consent steps. Pure: the handler reads them once the client and redirect URI are known good, so
//! every refusal here is an error redirect (§3.1.2.6), never a page.

use crate::clock::Millis;
use crate::oauth::params::Params;

/// The longest `nonce` kept (bytes). The value travels into the stored code and the ID token, so it is bounded;
/// 255 is far above what relying parties send (a random value of 16–64 characters) and keeps a code record small.
pub const MAX_NONCE_LEN: usize = 255;

/// The longest `login_hint` used to prefill the sign-in form (longer ones are ignored: no username is that long).
const MAX_LOGIN_HINT_LEN: usize = 255;

/// A refusal, answered by redirect with `error`, `error_description`, `state` and `iss`.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub description: &'static str,
}

impl Refusal {
    fn invalid(description: &'static str) -> Self {
        Self {
            error: "invalid_request",
            description,
        }
    }
}

/// `prompt` (§3.1.2.1). `select_account` is read as `login`: one account per browser session, so choosing an
/// account is signing in again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// What the OIDC parameters ask of this request. `display`, `ui_locales`, `claims_locales` and `acr_values` are
/// accepted and not acted on; `id_token_hint` needs the signing keys, so the handler verifies it
/// (`oauth::id_token_hint`) and compares it with the session's user under `prompt=none`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OidcRequest {
    pub prompt: Prompt,
    /// Seconds since the sign-in after which it is too old; `Some(0)` demands a fresh one, as `prompt=login` does.
    pub max_age: Option<u64>,
    pub nonce: Option<String>,
    pub login_hint: Option<String>,
}

impl OidcRequest {
    pub fn parse(params: &Params) -> Result<Self, Refusal> {
        let unsupported = [
            (
                "request",
                "request_not_supported",
                "request objects are not supported",
            ),
            (
                "request_uri",
                "request_uri_not_supported",
                "request_uri is not supported",
            ),
            (
                "registration",
                "registration_not_supported",
                "registration is not supported",
            ),
        ];
        if let Some((_, error, description)) = unsupported.iter().find(|(p, ..)| params.contains(p))
        {
            return Err(Refusal { error, description });
        }
        if params.get("response_mode").is_some_and(|m| m != "query") {
            return Err(Refusal::invalid("only response_mode=query is supported"));
        }
        let nonce = params.get("nonce").filter(|n| !n.is_empty());
        if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) {
            return Err(Refusal::invalid("nonce is longer than 255 bytes"));
        }
        let max_age = match params.get("max_age") {
            None => None,
            Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
                Some(a.parse().unwrap_or(u64::MAX))
            }
            Some(_) => return Err(Refusal::invalid("max_age must be a number of seconds")),
        };
        Ok(Self {
            prompt: prompt(params.get("prompt").unwrap_or(""))?,
            max_age,
            nonce: nonce.map(str::to_owned),
            login_hint: params
                .get("login_hint")
                .filter(|h| !h.is_empty() && h.len() <= MAX_LOGIN_HINT_LEN)
                .map(str::to_owned),
        })
    }

    /// Whether the request demands a sign-in made after it started (`prompt=login`, `select_account`,
    /// `max_age=0`): no session older than the request satisfies it.
    pub fn demands_fresh_sign_in(&self) -> bool {
        self.prompt.login || self.max_age == Some(0)
    }

    /// Whether a session that signed in at `signed_in_at` satisfies the request at `now`. `fresh` is the time
    /// the request started, as the sealed freshness parameter carries it back from the sign-in page.
    pub fn accepts_sign_in(
        &self,
        signed_in_at: Millis,
        fresh: Option<Millis>,
        now: Millis,
    ) -> bool {
        let fresh_enough = match fresh {
            Some(start) => signed_in_at >= start,
            None => !self.demands_fresh_sign_in(),
        };
        let young_enough = self.max_age.is_none_or(|secs| {
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            signed_in_at >= now.saturating_sub(secs.saturating_mul(1000))
        });
        fresh_enough && young_enough
    }
}

fn prompt(raw: &str) -> Result<Prompt, Refusal> {
    let mut p = Prompt::default();
    for value in raw.split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => p.none = true,
            "login" | "select_account" => p.login = true,
            "consent" => p.consent = true,
            _ => return Err(Refusal::invalid("unsupported prompt value")),
        }
    }
    if p.none && (p.login || p.consent) {
        return Err(Refusal::invalid(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<OidcRequest, Refusal> {
        OidcRequest::parse(&Params::parse(q.as_bytes()).unwrap())
    }

    fn error(q: &str) -> &'static str {
        parse(q).unwrap_err().error
    }

    #[test]
    fn unsupported_parameters_have_their_own_errors() {
        assert_eq!(error("request=x"), "request_not_supported");
        assert_eq!(error("request_uri=https://x"), "request_uri_not_supported");
        assert_eq!(error("registration=%7B%7D"), "registration_not_supported");
        assert_eq!(error("response_mode=fragment"), "invalid_request");
        assert!(parse("response_mode=query").is_ok());
    }

    #[test]
    fn prompt_values_combine_except_none() {
        let p = parse("prompt=login%20consent").unwrap().prompt;
        assert_eq!(
            p,
            Prompt {
                none: false,
                login: true,
                consent: true
            }
        );
        assert!(parse("prompt=select_account").unwrap().prompt.login);
        assert!(parse("prompt=none").unwrap().prompt.none);
        for bad in [
            "prompt=none%20login",
            "prompt=none%20consent",
            "prompt=bogus",
        ] {
            assert_eq!(error(bad), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn nonce_max_age_and_login_hint_are_bounded() {
        let long = "n".repeat(MAX_NONCE_LEN);
        assert_eq!(
            parse(&format!("nonce={long}")).unwrap().nonce,
            Some(long.clone())
        );
        assert_eq!(error(&format!("nonce={long}n")), "invalid_request");
        assert_eq!(parse("nonce=").unwrap().nonce, None);
        assert_eq!(parse("max_age=60").unwrap().max_age, Some(60));
        for bad in ["max_age=-1", "max_age=1.5", "max_age=abc"] {
            assert_eq!(error(bad), "invalid_request", "{bad}");
        }
        assert_eq!(
            parse("login_hint=jane").unwrap().login_hint.as_deref(),
            Some("jane")
        );
        let hint = "h".repeat(256);
        assert_eq!(
            parse(&format!("login_hint={hint}")).unwrap().login_hint,
            None
        );
        assert!(
            parse("id_token_hint=x&display=page&ui_locales=de&acr_values=1&claims_locales=de")
                .is_ok()
        );
    }

    #[test]
    fn freshness_follows_prompt_login_and_max_age() {
        let plain = parse("").unwrap();
        assert!(plain.accepts_sign_in(0, None, 1_000_000));
        let login = parse("prompt=login").unwrap();
        assert!(
            !login.accepts_sign_in(1_000_000, None, 1_000_000),
            "no session predates the request"
        );
        assert!(login.accepts_sign_in(500, Some(500), 900));
        assert!(!login.accepts_sign_in(499, Some(500), 900));
        let zero = parse("max_age=0").unwrap();
        assert!(zero.demands_fresh_sign_in());
        assert!(zero.accepts_sign_in(500, Some(500), 500));
        let minute = parse("max_age=60").unwrap();
        assert!(!minute.demands_fresh_sign_in());
        assert!(minute.accepts_sign_in(40_000, None, 100_000));
        assert!(!minute.accepts_sign_in(39_999, None, 100_000));
        assert!(parse("max_age=99999999999999999999")
            .unwrap()
            .accepts_sign_in(0, None, 1));
    }
}
