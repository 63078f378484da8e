//! Token policy: what a grant gets (its scope, whether a refresh token comes with it, how long each credential
//! lives), decided from the app, the scope and the `[tokens]` config alone. Pure functions, no OAuth engine types
//! and no store, so each rule is stated and tested once; `oauth::primitives` applies them inside the flows.

use crate::clock::Millis;
use crate::config::TokenConfig;
use crate::model::GrantType;

/// The longest an authorization code lives, whatever `tokens.code_ttl_secs` says: RFC 6749 §4.1.2 recommends at
/// most ten minutes, and a code is a bearer credential until it is redeemed.
pub const MAX_CODE_TTL_SECS: u64 = 600;

/// A credential the authorization server issues, for its lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    Code,
    Access,
    Refresh,
}

impl Lifetime {
    /// How long it lives: `tokens.*_ttl_secs`, a code's capped at [`MAX_CODE_TTL_SECS`].
    pub fn secs(self, cfg: &TokenConfig) -> u64 {
        match self {
            Self::Code => cfg.code_ttl_secs.min(MAX_CODE_TTL_SECS),
            Self::Access => cfg.access_ttl_secs,
            Self::Refresh => cfg.refresh_ttl_secs,
        }
    }

    /// When one issued at `now` expires.
    pub fn expires_at(self, cfg: &TokenConfig, now: Millis) -> Millis {
        now + self.secs(cfg) as i64 * 1000
    }
}

/// Whether an app with `grant_types` may hold refresh tokens at all: only if it registered the refresh_token
/// grant.
pub fn app_refreshes(grant_types: &[GrantType]) -> bool {
    grant_types.contains(&GrantType::RefreshToken)
}

/// Whether a grant of `scope` may come with a refresh token: an OpenID request only with `offline_access`
/// (OIDC Core §11, as the consent page says); a plain OAuth request always (the app's grant types decide). A
/// rotation asks this of the presented refresh token's scope, which the next one carries, not of the (possibly
/// narrowed) new access token's: narrowing an access token does not end offline access.
pub fn scope_refreshes(scope: &str) -> bool {
    let has = |want: &str| scope.split(' ').any(|t| t == want);
    !has("openid") || has("offline_access")
}

/// Whether a request for `requested` scopes may be granted to an app allowed `app_scopes`: every requested scope
/// must be one of the app's (the request is refused otherwise, never silently narrowed).
pub fn scope_allowed<'r>(
    app_scopes: &[String],
    requested: impl IntoIterator<Item = &'r str>,
) -> bool {
    requested
        .into_iter()
        .all(|t| app_scopes.iter().any(|a| a == t))
}

/// The scope a request that names none is granted: all the app's scopes, space-separated.
pub fn default_scope(app_scopes: &[String]) -> String {
    app_scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TokenConfig {
        TokenConfig {
            access_ttl_secs: 3600,
            refresh_ttl_secs: 86_400,
            code_ttl_secs: 120,
            ..TokenConfig::default()
        }
    }

    fn scopes(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn lifetimes_come_from_the_tokens_config() {
        let c = cfg();
        assert_eq!(Lifetime::Access.secs(&c), 3600);
        assert_eq!(Lifetime::Refresh.secs(&c), 86_400);
        assert_eq!(Lifetime::Code.secs(&c), 120);
    }

    #[test]
    fn a_code_lives_at_most_ten_minutes_whatever_the_config_says() {
        let c = TokenConfig {
            code_ttl_secs: 3600,
            ..cfg()
        };
        assert_eq!(Lifetime::Code.secs(&c), MAX_CODE_TTL_SECS);
        assert_eq!(Lifetime::Code.expires_at(&c, 1_000), 1_000 + 600_000);
    }

    #[test]
    fn expiry_is_now_plus_the_lifetime_in_milliseconds() {
        let c = cfg();
        assert_eq!(Lifetime::Access.expires_at(&c, 5), 5 + 3_600_000);
        assert_eq!(Lifetime::Refresh.expires_at(&c, 0), 86_400_000);
    }

    #[test]
    fn only_an_app_with_the_refresh_token_grant_refreshes() {
        use GrantType::*;
        assert!(app_refreshes(&[AuthorizationCode, RefreshToken]));
        assert!(!app_refreshes(&[AuthorizationCode]));
        assert!(!app_refreshes(&[ClientCredentials]));
        assert!(!app_refreshes(&[]));
    }

    #[test]
    fn an_openid_grant_refreshes_only_with_offline_access() {
        assert!(!scope_refreshes("openid profile"));
        assert!(scope_refreshes("openid offline_access"));
        assert!(scope_refreshes("email offline_access openid"));
        // Whole scope tokens only.
        assert!(!scope_refreshes("openid offline_accessx"));
    }

    #[test]
    fn a_plain_oauth_grant_always_refreshes() {
        assert!(scope_refreshes("profile email"));
        assert!(scope_refreshes("latchkey:api"));
        assert!(scope_refreshes(""));
        assert!(scope_refreshes("openidx"));
    }

    #[test]
    fn requested_scopes_must_all_be_allowed_for_the_app() {
        let app = scopes("openid profile email");
        assert!(scope_allowed(&app, ["openid", "email"]));
        assert!(scope_allowed(&app, ["profile"]));
        assert!(!scope_allowed(&app, ["openid", "latchkey:api"]));
        assert!(!scope_allowed(&app, ["prof"]));
        // An empty request asks for nothing the app lacks.
        assert!(scope_allowed(&app, []));
    }

    #[test]
    fn no_scope_requested_means_all_the_apps_scopes() {
        assert_eq!(
            default_scope(&scopes("openid profile latchkey:api")),
            "openid profile latchkey:api"
        );
        assert_eq!(default_scope(&[]), "");
    }
}
