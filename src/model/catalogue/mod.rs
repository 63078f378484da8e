//! The provider catalogue: one declarative [`Preset`] per upstream that Latchkey knows by name (Stack Auth's
//! standard types, Rocket.Chat's built-in services), and the resolver that turns a stored [`Provider`] into the
//! [`Upstream`] federated sign-in talks to (README.md#provider-presets).
//!
//! Pure data, no IO: the sign-in engine (`upstream`) follows what an entry says, `core` reads the Stack type of a
//! link from it, and the config checks `[[providers]]` against it. Adding a provider is adding one entry to
//! [`stack`] or [`rocketchat`] (and a row to the README's table).

mod apple;
mod resolve;
mod rocketchat;
mod stack;

pub use resolve::{resolve, FixedIssuer, IdentityAuth, Mapper, Upstream};

use crate::model::link::CUSTOM_TYPE;
use crate::model::Provider;

/// How a preset's upstream signs users in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Authorization code (RFC 6749) and an identity document fetched with the access token.
    OAuth2,
    /// OpenID Connect with a fixed issuer (Apple): the identity comes from the ID token of the token response,
    /// verified against the issuer's JWKS; no discovery document is read.
    Oidc(Issuer),
    /// OAuth 1.0a (RFC 5849, `upstream::oauth1`): the entry's `authorize` is where the browser takes the request
    /// token, `token` the access token endpoint, `identity` a resource signed with the access token; the client
    /// authentication, scopes and PKCE of the entry do not apply (every request is signed).
    OAuth1 {
        /// The temporary credentials (request token) endpoint.
        request_token: &'static str,
    },
}

/// An [`Protocol::Oidc`] entry's issuer. Both URLs follow the provider's `url` like the endpoints do, so that a
/// test (or a stand-in) at another host is also the issuer its ID tokens must name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// The ID tokens' `iss`, byte for byte.
    pub issuer: &'static str,
    pub jwks: &'static str,
    pub response_mode: ResponseMode,
}

/// How the authorization response comes back to the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    /// A redirect with the parameters in the query (RFC 6749's default).
    Query,
    /// An auto-submitted `POST` form (OAuth 2.0 Form Post Response Mode): Apple, which also posts the `user`
    /// JSON (the name) there on first consent.
    FormPost,
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// As [`ClientAuth::Post`], the secret being a short-lived ES256 JWT that `upstream::apple` signs with the
    /// provider's `.p8` key (its stored secret), `team_id` and `key_id` options.
    AppleJwt,
}

/// The value of an extra header on the identity request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// The provider's client id (Twitch's `Client-Id`).
    ClientId,
    Fixed(&'static str),
}

/// Which upstream answer proves the email verified: what the upstream itself says, never an assumption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailVerified {
    /// The upstream vouches for no email (or says it does not check): never verified.
    Never,
    /// A claim of the identity (below the root): `true`, or the string `"true"`.
    Claim(&'static str),
    /// The secondary emails endpoint: the address is listed there as verified.
    EmailsEndpoint,
    /// The upstream documents that the email it returns is always a verified one (Twitch).
    Documented,
}

/// How the picture URL is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picture {
    None,
    /// A dotted path below the root.
    Path(&'static str),
    /// Discord's CDN URL, built from the user id and the `avatar` hash.
    Discord,
}

/// How an identity document maps to an account. Paths are dotted (`picture.data.url`) and read below `root`;
/// an empty path means the upstream has no such field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Where the account sits in the document (`data` for X, `data.0` for Twitch, `ocs.data` for Nextcloud).
    pub root: &'static str,
    pub id: &'static str,
    pub email: &'static str,
    pub email_verified: EmailVerified,
    /// The display name: the first of these that is present.
    pub name: &'static [&'static str],
    pub username: &'static str,
    pub picture: Picture,
}

/// A secondary emails endpoint (GitHub, Bitbucket), read when the identity has no email or when it is the proof
/// of verification: the primary verified address is the one used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emails {
    pub url: &'static str,
    /// Where the list sits in the answer (`""`: the answer is the list, `values` for Bitbucket).
    pub list: &'static str,
    pub address: &'static str,
    pub primary: &'static str,
    pub verified: &'static str,
}

/// One catalogue entry. Endpoint URLs are the upstream's own; a provider's `url` replaces their scheme and host
/// (self-hosted GitLab, GitHub Enterprise, tests), and `{option}` placeholders take the provider's option or the
/// default declared in [`Preset::options`] (Microsoft's `{tenant}`). An entry without a host (`/oauth2/token`)
/// needs the provider's `url`.
#[derive(Debug, PartialEq, Eq)]
pub struct Preset {
    /// The preset id: Rocket.Chat's service name or Stack's type; a provider's default service key.
    pub id: &'static str,
    pub display_name: &'static str,
    /// Stack's `type` of a link through this preset; `None`: a Rocket.Chat-only service (links say `custom`).
    pub stack_type: Option<&'static str>,
    pub protocol: Protocol,
    pub authorize: &'static str,
    pub token: &'static str,
    pub identity: &'static str,
    pub emails: Option<Emails>,
    /// Requested unless the provider sets its own scope.
    pub scopes: &'static str,
    pub pkce: bool,
    pub client_auth: ClientAuth,
    pub identity_auth: IdentityAuth,
    pub identity_headers: &'static [(&'static str, HeaderValue)],
    pub mapping: Mapping,
    /// The non-secret options the entry reads (`Provider::options`), each with its default.
    pub options: &'static [(&'static str, &'static str)],
}

/// Every preset, Stack's standard types first.
pub fn all() -> impl Iterator<Item = &'static Preset> {
    stack::PRESETS
        .iter()
        .chain(std::iter::once(&apple::APPLE))
        .chain(rocketchat::PRESETS.iter())
}

/// The generic OpenID Connect issuer (Okta, Keycloak, another Latchkey): not an entry, since everything an entry
/// says comes from the issuer's discovery document (`upstream::oidc`, docs/oidc.md#latchkey-as-a-relying-party).
/// The provider's `url` is the issuer.
pub const OIDC: &str = "oidc";

/// The preset called `id`.
pub fn find(id: &str) -> Option<&'static Preset> {
    all().find(|p| p.id == id)
}

/// Stack's `type` of a link through provider `p`: its preset's Stack type, else [`CUSTOM_TYPE`] (custom
/// providers and Rocket.Chat-only presets).
pub fn link_type(p: &Provider) -> &'static str {
    p.preset
        .as_deref()
        .and_then(find)
        .and_then(|preset| preset.stack_type)
        .unwrap_or(CUSTOM_TYPE)
}

/// Checks a preset id and its options as a caller gives them: a known preset, declared option names,
/// option values that are safe inside a URL path.
pub fn check(
    preset: &str,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    if preset == OIDC {
        return match options.keys().next() {
            Some(k) => Err(format!("preset {preset:?} has no option {k:?}")),
            None => Ok(()),
        };
    }
    let p = find(preset).ok_or_else(|| {
        let known: Vec<&str> = std::iter::once(OIDC).chain(all().map(|p| p.id)).collect();
        format!("unknown preset {preset:?} (one of {})", known.join(", "))
    })?;
    for (k, v) in options {
        if !p.options.iter().any(|(name, _)| name == k) {
            return Err(format!("preset {preset:?} has no option {k:?}"));
        }
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(format!(
                "option {k:?} must be letters, digits, '-', '.' or '_'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_stack_types_are_stacks() {
        let ids: Vec<&str> = all().map(|p| p.id).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!ids[..i].contains(id), "{id} twice");
        }
        let stack = [
            "google",
            "github",
            "microsoft",
            "spotify",
            "facebook",
            "discord",
            "gitlab",
            "bitbucket",
            "linkedin",
            "apple",
            "x",
            "twitch",
        ];
        for t in stack {
            assert_eq!(find(t).unwrap().stack_type, Some(t), "{t}");
        }
        for rc in [
            "github_enterprise",
            "nextcloud",
            "wordpress",
            "tokenpass",
            "drupal",
            "dolphin",
            "twitter",
        ] {
            assert_eq!(find(rc).unwrap().stack_type, None, "{rc}");
        }
        assert!(
            all().all(|p| p.protocol == Protocol::OAuth2 || ["twitter", "apple"].contains(&p.id))
        );
        assert!(matches!(
            find("twitter").unwrap().protocol,
            Protocol::OAuth1 { .. }
        ));
        assert!(matches!(find("apple").unwrap().protocol, Protocol::Oidc(_)));
    }

    #[test]
    fn a_link_type_is_the_presets_stack_type_or_custom() {
        let mut p = Provider::new("id".into(), "Gitlab".into(), 0);
        assert_eq!(link_type(&p), "custom");
        p.preset = Some("gitlab".into());
        assert_eq!(link_type(&p), "gitlab");
        p.preset = Some("nextcloud".into());
        assert_eq!(link_type(&p), "custom");
        p.preset = Some("apple".into());
        assert_eq!(link_type(&p), "apple");
    }

    #[test]
    fn options_are_declared_and_url_safe() {
        let opts = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into_iter().collect();
        assert!(check("microsoft", &opts("tenant", "contoso.onmicrosoft.com")).is_ok());
        assert!(check("microsoft", &opts("tenant", "a/../b")).is_err());
        assert!(check("microsoft", &opts("region", "eu")).is_err());
        assert!(check("github", &Default::default()).is_ok());
        assert!(check("apple", &opts("team_id", "ABCDE12345")).is_ok());
        assert!(check("appel", &Default::default())
            .unwrap_err()
            .contains("unknown preset"));
    }
}
