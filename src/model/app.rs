//! OAuth apps: the clients of Latchkey's own authorization server (Rocket.Chat's `oauth-apps`, plus Latchkey's
//! client type, grant types, scopes and consent fields).

use super::oidc::{parse_alg, SigningAlg};
use super::{profile, redirect, UserRef};
use crate::clock::Millis;
use crate::error::{Error, Field, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientType {
    /// Holds a secret; authenticates at the token endpoint.
    #[default]
    Confidential,
    /// A browser or native app: no secret, PKCE S256 required.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            _ => Err(Error::invalid(
                Field::ClientType,
                "must be \"confidential\" or \"public\"",
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "authorization_code" => Ok(Self::AuthorizationCode),
            "refresh_token" => Ok(Self::RefreshToken),
            "client_credentials" => Ok(Self::ClientCredentials),
            other => Err(Error::invalid(
                Field::GrantTypes,
                format!("unsupported grant type {other:?}"),
            )),
        }
    }
}

pub const DEFAULT_SCOPES: &str = "openid profile email offline_access";

/// The scope that lets an OAuth access token act as its user on the admin APIs (RC's `/api/v1/*`, Locoia's, Stack's
/// user sessions). Never a default: an app gets it only when its `scopes` list it and the user allows it on the
/// consent page, so signing in to a third-party app never hands it the user's admin rights.
pub const API_SCOPE: &str = "latchkey:api";

/// Whether a granted scope string (space-separated) includes [`API_SCOPE`].
pub fn grants_api(scope: &str) -> bool {
    scope.split(' ').any(|s| s == API_SCOPE)
}

/// An app's own scopes: valid tokens, and in the `latchkey:` namespace only [`API_SCOPE`], so a misspelt
/// `latchkey:admin` is an error rather than a scope that silently grants nothing.
fn parse_app_scopes(raw: &str) -> Result<Vec<String>> {
    let scopes = parse_scopes(raw)?;
    match scopes
        .iter()
        .find(|s| s.starts_with("latchkey:") && *s != API_SCOPE)
    {
        Some(s) => Err(Error::invalid(
            Field::Scopes,
            format!("unknown Latchkey scope {s:?} (the only one is {API_SCOPE:?})"),
        )),
        None => Ok(scopes),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub client_id: String,
    /// Validated and in registration order; rendered comma-joined as RC does.
    pub redirect_uris: Vec<String>,
    pub client_type: ClientType,
    pub grant_types: Vec<GrantType>,
    /// Allowed scopes, each a valid RFC 6749 scope token.
    pub scopes: Vec<String>,
    pub skip_consent: bool,
    /// Bumped whenever the app is deactivated, reactivated or re-keyed into a new life: client_credentials tokens
    /// carry the epoch they were issued in and die when it moves (revocation without a scan or a transaction).
    pub token_epoch: u64,
    /// argon2id PHC string; `None` for public clients. The plaintext is shown once and never stored.
    pub secret_hash: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub created_by: UserRef,
    pub oidc: OidcSettings,
}

/// The format of the access tokens an app receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessTokenFormat {
    /// Random, looked up in the store (introspection, userinfo).
    #[default]
    Opaque,
    /// An RFC 9068 JWT a resource server can verify offline; the store still decides whether it is live.
    Jwt,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opaque => "opaque",
            Self::Jwt => "jwt",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "opaque" => Ok(Self::Opaque),
            "jwt" => Ok(Self::Jwt),
            _ => Err(Error::invalid(
                Field::AccessTokenFormat,
                "must be \"opaque\" or \"jwt\"",
            )),
        }
    }
}

/// What an app's tokens say `sub` is (OIDC Core §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SubjectType {
    /// The user id: the same for every app.
    #[default]
    Public,
    /// Derived from the app's sector (the host of its redirect URIs) and the user id, so apps on different hosts
    /// cannot correlate their users.
    Pairwise,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "public" => Ok(Self::Public),
            "pairwise" => Ok(Self::Pairwise),
            _ => Err(Error::invalid(
                Field::SubjectType,
                "must be \"public\" or \"pairwise\"",
            )),
        }
    }
}

/// An app's OpenID Connect settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    pub id_token_signed_response_alg: SigningAlg,
    pub access_token_format: AccessTokenFormat,
    /// Where RP-initiated logout may send the browser back to: validated as redirect URIs, matched exactly.
    pub post_logout_redirect_uris: Vec<String>,
    pub subject_type: SubjectType,
    /// Whether the scope's claims also go in the ID token (many relying parties read email and name from it),
    /// not only in userinfo.
    pub id_token_claims: bool,
    /// The users' custom claims this app receives (ID token, userinfo, JWT access tokens), by name.
    pub extra_claims: Vec<String>,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            id_token_signed_response_alg: SigningAlg::default(),
            access_token_format: AccessTokenFormat::default(),
            post_logout_redirect_uris: Vec::new(),
            subject_type: SubjectType::default(),
            id_token_claims: true,
            extra_claims: Vec::new(),
        }
    }
}

/// The caller-settable OpenID Connect settings as given; `None` keeps the current (or default) value.
#[derive(Clone, Debug, Default)]
pub struct OidcInput {
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_format: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub subject_type: Option<String>,
    pub id_token_claims: Option<bool>,
    pub extra_claims: Option<Vec<String>>,
}

/// The validated form of [`OidcInput`].
#[derive(Clone, Debug, Default)]
pub struct OidcPatch {
    pub id_token_signed_response_alg: Option<SigningAlg>,
    pub access_token_format: Option<AccessTokenFormat>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub subject_type: Option<SubjectType>,
    pub id_token_claims: Option<bool>,
    pub extra_claims: Option<Vec<String>>,
}

impl OidcInput {
    pub fn validate(self, http: redirect::HttpRedirects) -> Result<OidcPatch> {
        let alg = |s: String| parse_alg(&s, Field::IdTokenSignedResponseAlg);
        let uris = |list: Vec<String>| {
            let mut out: Vec<String> = Vec::new();
            for u in list {
                redirect::validate_with(&u, http).map_err(|e| match e {
                    Error::Invalid { reason, .. } => {
                        Error::invalid(Field::PostLogoutRedirectUris, reason)
                    }
                    other => other,
                })?;
                if !out.contains(&u) {
                    out.push(u);
                }
            }
            Ok::<_, Error>(out)
        };
        let names = |list: Vec<String>| {
            let mut out: Vec<String> = Vec::new();
            for n in list {
                if !profile::is_custom_name(&n) {
                    return Err(Error::invalid(
                        Field::ExtraClaims,
                        format!("{n:?} cannot name a custom claim"),
                    ));
                }
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            Ok(out)
        };
        Ok(OidcPatch {
            id_token_signed_response_alg: self.id_token_signed_response_alg.map(alg).transpose()?,
            access_token_format: self
                .access_token_format
                .as_deref()
                .map(AccessTokenFormat::parse)
                .transpose()?,
            post_logout_redirect_uris: self.post_logout_redirect_uris.map(uris).transpose()?,
            subject_type: self
                .subject_type
                .as_deref()
                .map(SubjectType::parse)
                .transpose()?,
            id_token_claims: self.id_token_claims,
            extra_claims: self.extra_claims.map(names).transpose()?,
        })
    }
}

impl OidcSettings {
    /// These settings with the patch's given values.
    pub fn patched(&self, p: OidcPatch) -> Self {
        let s = self.clone();
        Self {
            id_token_signed_response_alg: p
                .id_token_signed_response_alg
                .unwrap_or(s.id_token_signed_response_alg),
            access_token_format: p.access_token_format.unwrap_or(s.access_token_format),
            post_logout_redirect_uris: p
                .post_logout_redirect_uris
                .unwrap_or(s.post_logout_redirect_uris),
            subject_type: p.subject_type.unwrap_or(s.subject_type),
            id_token_claims: p.id_token_claims.unwrap_or(s.id_token_claims),
            extra_claims: p.extra_claims.unwrap_or(s.extra_claims),
        }
    }

    /// A pairwise app needs one sector: all its redirect URIs on one host.
    pub fn check_with(&self, redirect_uris: &[String]) -> Result<()> {
        if self.subject_type == SubjectType::Pairwise && sector_of(redirect_uris).is_none() {
            return Err(Error::invalid(
                Field::SubjectType,
                "pairwise subjects need every redirect URI on one host (the sector)",
            ));
        }
        Ok(())
    }
}

/// The host every URI names, or `None` when they name several (or none, or a URI has no host).
fn sector_of(uris: &[String]) -> Option<String> {
    let first = host_of(uris.first()?)?;
    uris.iter()
        .all(|u| host_of(u).as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn host_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

/// The caller-settable fields, validated; what `create` and `update` agree on.
#[derive(Clone, Debug, Default)]
pub struct AppInput {
    pub name: String,
    pub active: bool,
    pub redirect_uri: String,
    pub client_type: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<String>,
    pub skip_consent: Option<bool>,
    pub oidc: OidcInput,
}

/// The validated form of [`AppInput`]; `None` keeps the current (or default) value.
#[derive(Clone, Debug)]
pub struct AppFields {
    pub name: String,
    pub active: bool,
    pub redirect_uris: Vec<String>,
    pub client_type: Option<ClientType>,
    pub grant_types: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<String>>,
    pub skip_consent: Option<bool>,
    pub oidc: OidcPatch,
}

impl AppInput {
    /// Checks in Rocket.Chat's order: name, then redirect URIs, then Latchkey's own fields.
    pub fn validate(self, http: redirect::HttpRedirects) -> Result<AppFields> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid(Field::Name, "must be 1 to 200 characters"));
        }
        let redirect_uris = redirect::parse_list(&self.redirect_uri, http)?;
        let client_type = self
            .client_type
            .as_deref()
            .map(ClientType::parse)
            .transpose()?;
        let grant_types = match self.grant_types {
            None => None,
            Some(list) => {
                let mut g = list
                    .iter()
                    .map(|s| GrantType::parse(s))
                    .collect::<Result<Vec<_>>>()?;
                g.sort();
                g.dedup();
                if g.is_empty() {
                    return Err(Error::invalid(Field::GrantTypes, "must not be empty"));
                }
                Some(g)
            }
        };
        let scopes = self.scopes.as_deref().map(parse_app_scopes).transpose()?;
        let oidc = self.oidc.validate(http)?;
        Ok(AppFields {
            name,
            active: self.active,
            redirect_uris,
            client_type,
            grant_types,
            scopes,
            skip_consent: self.skip_consent,
            oidc,
        })
    }
}

impl AppFields {
    /// Rules that involve more than one field.
    pub fn check_combination(client_type: ClientType, grants: &[GrantType]) -> Result<()> {
        if client_type == ClientType::Public && grants.contains(&GrantType::ClientCredentials) {
            return Err(Error::invalid(
                Field::GrantTypes,
                "public clients cannot use client_credentials",
            ));
        }
        Ok(())
    }
}

/// Space-separated RFC 6749 §3.3 scope tokens (`%x21 / %x23-5B / %x5D-7E`), deduplicated, order kept.
pub fn parse_scopes(raw: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        let ok = s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok || s.len() > 128 {
            return Err(Error::invalid(
                Field::Scopes,
                format!("invalid scope token {s:?}"),
            ));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

impl App {
    pub fn default_grants() -> Vec<GrantType> {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    }

    pub fn default_scopes() -> Vec<String> {
        DEFAULT_SCOPES.split(' ').map(str::to_owned).collect()
    }

    pub fn redirect_uri_joined(&self) -> String {
        self.redirect_uris.join(",")
    }

    /// The pairwise sector identifier (OIDC Core §8.1): the host of the redirect URIs, which a pairwise app must
    /// hold to one ([`OidcSettings::check_with`]). Changing that host changes every pairwise subject the app sees.
    pub fn sector(&self) -> String {
        self.redirect_uris
            .first()
            .and_then(|u| host_of(u))
            .unwrap_or_default()
    }

    /// Applies validated fields, keeping current values where a field was not given.
    pub fn apply(&mut self, f: AppFields, now: Millis) -> Result<()> {
        let client_type = f.client_type.unwrap_or(self.client_type);
        let grants = f.grant_types.unwrap_or_else(|| self.grant_types.clone());
        AppFields::check_combination(client_type, &grants)?;
        let oidc = self.oidc.patched(f.oidc);
        oidc.check_with(&f.redirect_uris)?;
        self.oidc = oidc;
        self.name = f.name;
        if self.active != f.active {
            self.token_epoch += 1;
        }
        self.active = f.active;
        self.redirect_uris = f.redirect_uris;
        self.client_type = client_type;
        self.grant_types = grants;
        if let Some(s) = f.scopes {
            self.scopes = s;
        }
        if let Some(s) = f.skip_consent {
            self.skip_consent = s;
        }
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input() -> AppInput {
        AppInput {
            name: "  My App ".into(),
            active: true,
            redirect_uri: "https://a.example/cb".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_trims_name_and_checks_in_rc_order() {
        let f = input()
            .validate(redirect::HttpRedirects::LoopbackOnly)
            .unwrap();
        assert_eq!(f.name, "My App");
        let e = AppInput {
            name: " ".into(),
            redirect_uri: "bad".into(),
            ..input()
        }
        .validate(redirect::HttpRedirects::LoopbackOnly)
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Invalid {
                field: Field::Name,
                ..
            }
        ));
        let e = AppInput {
            redirect_uri: "bad".into(),
            ..input()
        }
        .validate(redirect::HttpRedirects::LoopbackOnly)
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Invalid {
                field: Field::RedirectUri,
                ..
            }
        ));
    }

    #[test]
    fn unknown_grant_and_client_type_are_rejected() {
        let e = AppInput {
            grant_types: Some(vec!["password".into()]),
            ..input()
        }
        .validate(redirect::HttpRedirects::LoopbackOnly)
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Invalid {
                field: Field::GrantTypes,
                ..
            }
        ));
        let e = AppInput {
            client_type: Some("secret".into()),
            ..input()
        }
        .validate(redirect::HttpRedirects::LoopbackOnly)
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Invalid {
                field: Field::ClientType,
                ..
            }
        ));
    }

    #[test]
    fn public_clients_cannot_use_client_credentials() {
        assert!(
            AppFields::check_combination(ClientType::Public, &[GrantType::ClientCredentials])
                .is_err()
        );
        assert!(AppFields::check_combination(
            ClientType::Confidential,
            &[GrantType::ClientCredentials]
        )
        .is_ok());
    }

    #[test]
    fn the_api_scope_is_requestable_and_other_latchkey_scopes_are_not() {
        let scopes = |s: &str| {
            AppInput {
                scopes: Some(s.into()),
                ..input()
            }
            .validate(redirect::HttpRedirects::LoopbackOnly)
            .map(|f| f.scopes.unwrap())
        };
        assert_eq!(
            scopes("openid latchkey:api").unwrap(),
            ["openid", "latchkey:api"]
        );
        assert!(matches!(
            scopes("openid latchkey:admin").unwrap_err(),
            Error::Invalid {
                field: Field::Scopes,
                ..
            }
        ));
        assert!(!App::default_scopes().iter().any(|s| s == API_SCOPE));
        assert!(grants_api("openid latchkey:api profile"));
        assert!(!grants_api("openid latchkey:apix profile"));
    }

    #[test]
    fn oidc_settings_are_validated() {
        let with = |oidc: OidcInput, uri: &str| {
            AppInput {
                redirect_uri: uri.into(),
                oidc,
                ..input()
            }
            .validate(redirect::HttpRedirects::LoopbackOnly)
        };
        let field = |r: Result<AppFields>| match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let bad = [
            (
                OidcInput {
                    id_token_signed_response_alg: Some("HS256".into()),
                    ..Default::default()
                },
                Field::IdTokenSignedResponseAlg,
            ),
            (
                OidcInput {
                    access_token_format: Some("macaroon".into()),
                    ..Default::default()
                },
                Field::AccessTokenFormat,
            ),
            (
                OidcInput {
                    post_logout_redirect_uris: Some(vec!["http://rp.example/bye".into()]),
                    ..Default::default()
                },
                Field::PostLogoutRedirectUris,
            ),
            (
                OidcInput {
                    subject_type: Some("secret".into()),
                    ..Default::default()
                },
                Field::SubjectType,
            ),
            (
                OidcInput {
                    extra_claims: Some(vec!["email".into()]),
                    ..Default::default()
                },
                Field::ExtraClaims,
            ),
        ];
        for (oidc, want) in bad {
            assert_eq!(field(with(oidc, "https://a.example/cb")), want);
        }
        let ok = with(
            OidcInput {
                id_token_signed_response_alg: Some("EdDSA".into()),
                post_logout_redirect_uris: Some(vec!["https://a.example/bye".into()]),
                subject_type: Some("pairwise".into()),
                extra_claims: Some(vec!["department".into(), "department".into()]),
                ..Default::default()
            },
            "https://a.example/cb",
        )
        .unwrap();
        let s = OidcSettings::default().patched(ok.oidc);
        assert_eq!(s.id_token_signed_response_alg, SigningAlg::EdDsa);
        assert_eq!(s.extra_claims, ["department"]);
        assert!(s.id_token_claims, "on by default");
    }

    #[test]
    fn pairwise_needs_one_sector() {
        let pairwise = OidcSettings {
            subject_type: SubjectType::Pairwise,
            ..OidcSettings::default()
        };
        let uris = |u: &[&str]| u.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(pairwise
            .check_with(&uris(&["https://A.example/cb", "https://a.example/other"]))
            .is_ok());
        let e = pairwise
            .check_with(&uris(&["https://a.example/cb", "https://b.example/cb"]))
            .unwrap_err();
        assert!(matches!(
            e,
            Error::Invalid {
                field: Field::SubjectType,
                ..
            }
        ));
        assert!(pairwise
            .check_with(&uris(&["com.example.app:/cb"]))
            .is_err());
        assert!(OidcSettings::default()
            .check_with(&uris(&["https://a.example/cb", "https://b.example/cb"]))
            .is_ok());
    }

    proptest! {
        #[test]
        fn scope_parsing_is_idempotent(raw in "[ -~]{0,60}") {
            if let Ok(s) = parse_scopes(&raw) {
                let again = parse_scopes(&s.join(" ")).unwrap();
                prop_assert_eq!(again, s);
            }
        }
    }
}
