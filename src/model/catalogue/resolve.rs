//! The one resolver: a stored [`Provider`] → the [`Upstream`] its sign-in talks to. A custom provider
//! (`preset: None`) is described by its Rocket.Chat `-*` settings exactly as before; a preset provider by its
//! catalogue entry, with the provider's `url` as the base, its options in the URLs, and its own scope when set.

use std::borrow::Cow;

use super::{find, ClientAuth, Emails, HeaderValue, Mapping, Protocol, ResponseMode};
use crate::model::provider::{IdentityTokenSentVia, Provider, TokenSentVia};

/// How the access token reaches the identity (and emails) endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityAuth {
    /// `Authorization: Bearer …`.
    Bearer,
    /// A query parameter of this name (Rocket.Chat's `-access_token_param`).
    Query(Cow<'static, str>),
}

/// How the identity document is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapper {
    /// A custom provider's `-username_field`, `-email_field`, `-name_field`, `-avatar_field` (empty: the usual
    /// claims).
    Custom {
        username: String,
        email: String,
        name: String,
        avatar: String,
    },
    Preset(&'static Mapping),
}

/// Everything sign-in needs to know about the upstream of one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// OAuth 1.0a (RFC 5849): the temporary credentials endpoint, where a sign-in starts; `None`: OAuth 2.0.
    pub request_token_url: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub identity_url: String,
    /// The secondary emails endpoint and the shape of its answer.
    pub emails: Option<(String, &'static Emails)>,
    pub scope: String,
    /// Send an S256 challenge and its verifier.
    pub pkce: bool,
    pub client_auth: ClientAuth,
    pub identity_auth: IdentityAuth,
    pub identity_headers: Vec<(&'static str, String)>,
    pub mapper: Mapper,
    pub response_mode: ResponseMode,
    /// A preset's fixed OpenID Connect issuer (Apple), placed like the endpoints.
    pub issuer: Option<FixedIssuer>,
}

/// The issuer of a [`Protocol::Oidc`] preset for one provider: the `iss` its ID tokens carry and its JWKS URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedIssuer {
    pub issuer: String,
    pub jwks_uri: String,
}

/// The upstream of `p`, or why it cannot sign anyone in (worded for the error page).
pub fn resolve(p: &Provider) -> Result<Upstream, String> {
    match p.preset.as_deref() {
        // The generic issuer is a custom provider whose endpoints the issuer's discovery document gives
        // (`upstream::oidc` fills them in before this runs) and whose identity is its verified ID token.
        None | Some(super::OIDC) => custom(p),
        Some(id) => preset(p, id),
    }
}

fn custom(p: &Provider) -> Result<Upstream, String> {
    if p.url.is_empty() && !p.authorize_path.starts_with("http") {
        return Err(no_url(p));
    }
    Ok(Upstream {
        request_token_url: None,
        authorize_url: p.endpoint(&p.authorize_path),
        token_url: p.endpoint(&p.token_path),
        identity_url: p.endpoint(&p.identity_path),
        emails: None,
        scope: p.sign_in_scope(),
        pkce: true,
        client_auth: match p.token_sent_via {
            TokenSentVia::Header => ClientAuth::Basic,
            TokenSentVia::Payload => ClientAuth::Post,
        },
        identity_auth: match p.identity_token_sent_via {
            IdentityTokenSentVia::Header => IdentityAuth::Bearer,
            _ => IdentityAuth::Query(Cow::Owned(p.access_token_param.clone())),
        },
        identity_headers: Vec::new(),
        mapper: Mapper::Custom {
            username: p.username_field.clone(),
            email: p.email_field.clone(),
            name: p.name_field.clone(),
            avatar: p.avatar_field.clone(),
        },
        response_mode: ResponseMode::Query,
        issuer: None,
    })
}

fn preset(p: &Provider, id: &str) -> Result<Upstream, String> {
    let preset = find(id).ok_or_else(|| {
        format!(
            "{} follows the preset {id:?}, which this server does not offer.",
            p.name
        )
    })?;
    let at = |template: &str| endpoint(p, preset.options, template).ok_or_else(|| no_url(p));
    let scope = p.sign_in_scope();
    Ok(Upstream {
        request_token_url: match preset.protocol {
            Protocol::OAuth1 { request_token } => Some(at(request_token)?),
            _ => None,
        },
        authorize_url: at(preset.authorize)?,
        token_url: at(preset.token)?,
        // An OpenID Connect preset without userinfo (Apple) has no identity endpoint.
        identity_url: match preset.identity {
            "" => String::new(),
            template => at(template)?,
        },
        emails: match &preset.emails {
            Some(e) => Some((at(e.url)?, e)),
            None => None,
        },
        scope: if scope.trim().is_empty() {
            preset.scopes.to_owned()
        } else {
            scope
        },
        pkce: preset.pkce,
        client_auth: preset.client_auth,
        identity_auth: preset.identity_auth.clone(),
        identity_headers: preset
            .identity_headers
            .iter()
            .map(|(name, v)| {
                let value = match v {
                    HeaderValue::ClientId => p.client_id().to_owned(),
                    HeaderValue::Fixed(f) => (*f).to_owned(),
                };
                (*name, value)
            })
            .collect(),
        mapper: Mapper::Preset(&preset.mapping),
        response_mode: match preset.protocol {
            Protocol::Oidc(i) => i.response_mode,
            _ => ResponseMode::Query,
        },
        issuer: match preset.protocol {
            // An issuer URL has no trailing `/`, including when the provider's `url` stands in for Apple's host.
            Protocol::Oidc(i) => Some(FixedIssuer {
                issuer: at(i.issuer)?.trim_end_matches('/').to_owned(),
                jwks_uri: at(i.jwks)?,
            }),
            _ => None,
        },
    })
}

fn no_url(p: &Provider) -> String {
    format!("{} has no server URL configured.", p.name)
}

/// A preset endpoint for `p`: `{option}` placeholders filled (the provider's value, else the declared default),
/// then the scheme and host replaced by the provider's `url` when it has one. `None`: a host-less entry and no
/// `url`.
fn endpoint(p: &Provider, options: &[(&str, &str)], template: &str) -> Option<String> {
    let mut filled = template.to_owned();
    for (name, default) in options {
        let value = p.options.get(*name).map_or(*default, String::as_str);
        filled = filled.replace(&format!("{{{name}}}"), value);
    }
    let absolute = url::Url::parse(&filled).ok();
    if p.url.is_empty() {
        return absolute.map(|_| filled);
    }
    let path = match &absolute {
        Some(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        None => filled,
    };
    Some(format!("{}{path}", p.url.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_preset(id: &str) -> Provider {
        let mut p = Provider::new("id".into(), "P".into(), 0);
        p.preset = Some(id.into());
        p.scope = String::new();
        p
    }

    #[test]
    fn a_custom_provider_reads_its_settings() {
        let mut p = Provider::new("id".into(), "Idp".into(), 0);
        assert_eq!(
            resolve(&p).unwrap_err(),
            "Idp has no server URL configured."
        );
        p.url = "https://idp.example".into();
        p.access_token_param = "token".into();
        let u = resolve(&p).unwrap();
        assert_eq!(u.authorize_url, "https://idp.example/oauth/authorize");
        assert_eq!(u.token_url, "https://idp.example/oauth/token");
        assert_eq!(u.identity_url, "https://idp.example/me");
        assert_eq!((u.pkce, u.client_auth), (true, ClientAuth::Post));
        assert_eq!(u.identity_auth, IdentityAuth::Query("token".into()));
        assert_eq!(u.scope, "openid");
    }

    #[test]
    fn a_preset_uses_its_endpoints_its_scopes_unless_set_and_the_url_as_base() {
        let mut p = with_preset("github");
        let u = resolve(&p).unwrap();
        assert_eq!(u.authorize_url, "https://github.com/login/oauth/authorize");
        assert_eq!(u.identity_url, "https://api.github.com/user");
        assert_eq!(
            u.emails.as_ref().unwrap().0,
            "https://api.github.com/user/emails"
        );
        assert_eq!(u.scope, "user:email");
        p.scope = "read:user user:email".into();
        p.url = "http://127.0.0.1:9/".into();
        let u = resolve(&p).unwrap();
        assert_eq!(u.scope, "read:user user:email");
        assert_eq!(u.token_url, "http://127.0.0.1:9/login/oauth/access_token");
        assert_eq!(u.identity_url, "http://127.0.0.1:9/user");
        let fb = resolve(&with_preset("facebook")).unwrap();
        assert!(
            fb.identity_url
                .ends_with("/me?fields=id,name,email,picture"),
            "{}",
            fb.identity_url
        );
    }

    #[test]
    fn options_fill_the_urls_and_self_hosted_presets_need_a_url() {
        let mut p = with_preset("microsoft");
        assert!(resolve(&p)
            .unwrap()
            .authorize_url
            .contains("/common/oauth2/v2.0/authorize"));
        p.options.insert("tenant".into(), "contoso".into());
        assert_eq!(
            resolve(&p).unwrap().token_url,
            "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
        );
        let mut n = with_preset("nextcloud");
        assert!(resolve(&n).is_err());
        n.url = "https://cloud.example".into();
        assert_eq!(
            resolve(&n).unwrap().identity_url,
            "https://cloud.example/ocs/v2.php/cloud/user?format=json"
        );
        let mut t = with_preset("twitch");
        t.set(
            crate::model::provider::Setting::Id,
            crate::model::provider::SettingValue::Str("cid".into()),
        )
        .unwrap();
        assert_eq!(
            resolve(&t).unwrap().identity_headers,
            vec![("Client-Id", "cid".to_owned())]
        );
    }

    #[test]
    fn apples_issuer_and_jwks_follow_the_url_like_its_endpoints() {
        let mut p = with_preset("apple");
        let u = resolve(&p).unwrap();
        assert_eq!(u.authorize_url, "https://appleid.apple.com/auth/authorize");
        assert_eq!(u.token_url, "https://appleid.apple.com/auth/token");
        assert_eq!((u.identity_url.as_str(), u.pkce), ("", false));
        assert_eq!(
            (u.scope.as_str(), u.client_auth, u.response_mode),
            ("name email", ClientAuth::AppleJwt, ResponseMode::FormPost)
        );
        let want = |issuer: &str, jwks_uri: &str| FixedIssuer {
            issuer: issuer.into(),
            jwks_uri: jwks_uri.into(),
        };
        assert_eq!(
            u.issuer,
            Some(want(
                "https://appleid.apple.com",
                "https://appleid.apple.com/auth/keys"
            ))
        );
        p.url = "http://127.0.0.1:9/".into();
        let u = resolve(&p).unwrap();
        assert_eq!(u.token_url, "http://127.0.0.1:9/auth/token");
        assert_eq!(
            u.issuer,
            Some(want("http://127.0.0.1:9", "http://127.0.0.1:9/auth/keys"))
        );
        assert_eq!(resolve(&with_preset("github")).unwrap().issuer, None);
    }

    #[test]
    fn twitter_speaks_oauth1_at_its_own_hosts_or_the_url() {
        let mut p = with_preset("twitter");
        let u = resolve(&p).unwrap();
        assert_eq!(
            u.request_token_url.as_deref(),
            Some("https://api.twitter.com/oauth/request_token")
        );
        assert_eq!(
            u.authorize_url,
            "https://api.twitter.com/oauth/authenticate"
        );
        assert_eq!(u.token_url, "https://api.twitter.com/oauth/access_token");
        p.url = "http://127.0.0.1:9".into();
        let u = resolve(&p).unwrap();
        assert_eq!(
            u.request_token_url.as_deref(),
            Some("http://127.0.0.1:9/oauth/request_token")
        );
        assert_eq!(
            u.identity_url,
            "http://127.0.0.1:9/1.1/account/verify_credentials.json?include_email=true"
        );
        assert_eq!(
            resolve(&with_preset("github")).unwrap().request_token_url,
            None
        );
    }
}
