//! oxide-auth's primitives (Registrar, Authorizer, Issuer) and extensions over the store, on a per-request handle:
//! no endpoint object, no global lock. Client authentication already happened (asynchronously, see
//! `client_auth.rs`), so `Registrar::check` only confirms the identity the flow was given.
//!
//! oxide-auth's primitives answer `Err(())`/`None` without a reason; each primitive records the precise RFC error
//! in [`Backend::outcome`] so the handler can answer with it instead of oxide-auth's generic one.

use std::borrow::Cow;

use oxide_auth::code_grant::accesstoken::{Extension as TokenExtension, Request as TokenRequest};
use oxide_auth::code_grant::authorization::{Extension as AuthzExtension, Request as AuthzRequest};
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, RefreshedToken, TokenType};
use oxide_auth::primitives::prelude::{Authorizer, Issuer, Registrar, Scope};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, RegistrarError,
};

use super::error::OAuthError;
use crate::clock;
use crate::crypto;
use crate::model::{redirect, App, ClientType, GrantType};
use crate::state::AppState;
use crate::store::{token::NewToken, CodeRecord, FamilyId, GrantRecord, Redeemed, Rotated};

/// Everything one request's flow needs; cheap to build.
pub struct Backend<'a> {
    pub state: &'a AppState,
    /// The client of this request: at the authorization endpoint the one named by `client_id`, at the token
    /// endpoint the authenticated one.
    pub app: &'a App,
    /// Whether the authorization request carried `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    /// When the resource owner signed in (the authorize handler sets it from the browser session): the codes'
    /// `auth_time`.
    pub auth_time: Option<clock::Millis>,
    /// Set by `Authorizer::extract`: the family the redeemed code starts.
    family: Option<FamilyId>,
    /// The specific error a primitive or extension ran into.
    pub outcome: Option<OAuthError>,
    /// Whether the issued token may come with a refresh token.
    pub allow_refresh: bool,
    pub pkce: PkceExtension,
    /// What `Issuer::issue`/`refresh` handed out: the token endpoint answers from this (oxide-auth's own JSON
    /// would need re-parsing to fix `token_type`, `expires_in` and the scope order).
    pub issued: Option<Issued>,
}

/// Tokens just issued and their (sorted) scope.
pub struct Issued {
    pub access: String,
    pub refresh: Option<String>,
    pub scope: String,
}

impl<'a> Backend<'a> {
    pub fn new(state: &'a AppState, app: &'a App) -> Self {
        Self {
            state,
            app,
            redirect_uri_sent: true,
            auth_time: None,
            family: None,
            outcome: None,
            allow_refresh: app.grant_types.contains(&GrantType::RefreshToken),
            pkce: PkceExtension {
                public: app.client_type == ClientType::Public,
                failed: None,
            },
            issued: None,
        }
    }

    fn fail(&mut self, e: OAuthError) {
        if self.outcome.is_none() {
            self.outcome = Some(e);
        }
    }

    fn new_token(&self, ttl_secs: u64) -> (String, NewToken) {
        let token = crypto::random_token();
        let digest = crypto::sha256(token.as_bytes());
        let expires_at = self.state.clock.now_ms() + ttl_secs as i64 * 1000;
        (token, NewToken { digest, expires_at })
    }

    /// Remembers what was issued for the response and hands the access token back to oxide-auth.
    fn record_issued(&mut self, access: String, refresh: Option<String>, scope: String) -> String {
        let token = access.clone();
        self.issued = Some(Issued {
            access,
            refresh,
            scope,
        });
        token
    }

    fn issuer_url(&self) -> url::Url {
        url::Url::parse(&self.state.issuer)
            .unwrap_or_else(|_| url::Url::parse("http://localhost/").expect("static URL"))
    }
}

/// Whether a grant of `scope` may come with a refresh token: an OpenID request only with `offline_access`
/// (OIDC Core §11, as the consent page says); a plain OAuth request always (the app's grant types decide).
fn refresh_allowed(scope: &str) -> bool {
    let has = |want: &str| scope.split(' ').any(|t| t == want);
    !has("openid") || has("offline_access")
}

/// A scope as a stable, sorted, space-separated string (oxide-auth's `Scope` is an unordered set).
pub fn scope_str(scope: &Scope) -> String {
    let mut v: Vec<&str> = scope.iter().collect();
    v.sort_unstable();
    v.join(" ")
}

fn exact(uri: &str) -> Result<RegisteredUrl, RegistrarError> {
    ExactUrl::new(uri.to_owned())
        .map(RegisteredUrl::Exact)
        .map_err(|_| RegistrarError::Unspecified)
}

impl Registrar for Backend<'_> {
    /// Exact match against the registered URIs, except the port of a loopback http URI (RFC 8252 §7.3);
    /// `redirect_uri` may be omitted only when exactly one URI is registered.
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        if bound.client_id != self.app.client_id {
            return Err(RegistrarError::Unspecified);
        }
        let chosen = match &bound.redirect_uri {
            Some(requested) => {
                let requested = requested.as_str();
                if !self
                    .app
                    .redirect_uris
                    .iter()
                    .any(|r| redirect::matches(r, requested))
                {
                    return Err(RegistrarError::Unspecified);
                }
                requested.to_owned()
            }
            None if self.app.redirect_uris.len() == 1 => self.app.redirect_uris[0].clone(),
            // client_credentials never redirects; oxide-auth still binds a URI.
            None if self.app.grant_types.contains(&GrantType::ClientCredentials)
                && !self.app.redirect_uris.is_empty() =>
            {
                self.app.redirect_uris[0].clone()
            }
            None => return Err(RegistrarError::Unspecified),
        };
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(exact(&chosen)?),
        })
    }

    /// Requested scopes must all be allowed for the app; none requested means all the app's scopes.
    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let allowed = &self.app.scopes;
        let scope = match scope {
            Some(s) => {
                if !s.iter().all(|t| allowed.iter().any(|a| a == t)) {
                    return Err(RegistrarError::Unspecified);
                }
                s
            }
            None => allowed
                .join(" ")
                .parse()
                .map_err(|_| RegistrarError::Unspecified)?,
        };
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope,
        })
    }

    /// The client was authenticated before the flow started; only its identity is confirmed here.
    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let public = self.app.client_type == ClientType::Public;
        if client_id == self.app.client_id && (public == passphrase.is_none()) {
            Ok(())
        } else {
            Err(RegistrarError::Unspecified)
        }
    }
}

impl Authorizer for Backend<'_> {
    fn authorize(&mut self, mut grant: Grant) -> Result<String, ()> {
        let pkce = match grant.extensions.remove(&Pkce::optional()) {
            Some(v) => v.into_private_value().map_err(drop)?,
            None => None,
        };
        let auth_time = self
            .auth_time
            .ok_or_else(|| tracing::error!("a code was about to be made without a sign-in time"))?;
        let now = self.state.clock.now_ms();
        let code = crypto::random_token();
        let record = CodeRecord {
            grant: GrantRecord {
                owner_id: grant.owner_id,
                client_id: grant.client_id,
                scope: scope_str(&grant.scope),
                redirect_uri: grant.redirect_uri.to_string(),
                redirect_uri_sent: self.redirect_uri_sent,
                pkce,
                auth_time,
            },
            expires_at: now + self.state.config.tokens.code_ttl_secs.min(600) as i64 * 1000,
            redeemed: None,
        };
        self.state
            .store
            .put_code(&crypto::sha256(code.as_bytes()), &record)
            .map_err(|e| tracing::error!(error = %e, "storing an authorization code failed"))?;
        Ok(code)
    }

    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let family: FamilyId = crypto::random_bytes();
        let now = self.state.clock.now_ms();
        let redeemed = self
            .state
            .store
            .redeem_code(
                &crypto::sha256(code.as_bytes()),
                &self.app.client_id,
                now,
                family,
            )
            .map_err(|e| tracing::error!(error = %e, "redeeming an authorization code failed"))?;
        let rec = match redeemed {
            Redeemed::Ok(rec) => rec,
            Redeemed::Unknown => {
                self.fail(OAuthError::invalid_grant("unknown authorization code"));
                return Ok(None);
            }
            Redeemed::OtherClient => {
                self.fail(OAuthError::invalid_grant(
                    "the authorization code was issued to another client",
                ));
                return Ok(None);
            }
            Redeemed::Expired => {
                self.fail(OAuthError::invalid_grant(
                    "the authorization code has expired",
                ));
                return Ok(None);
            }
            Redeemed::Replayed => {
                self.fail(OAuthError::invalid_grant(
                    "the authorization code was already used; its tokens are revoked",
                ));
                return Ok(None);
            }
        };
        self.family = Some(family);
        let mut extensions = Extensions::new();
        if let Some(p) = rec.grant.pkce.clone() {
            extensions.set(&Pkce::optional(), Value::private(Some(p)));
        }
        let g = rec.grant;
        Ok(Some(Grant {
            owner_id: g.owner_id,
            client_id: g.client_id,
            scope: g.scope.parse().map_err(drop)?,
            redirect_uri: g.redirect_uri.parse().map_err(drop)?,
            until: clock::oxide_unexpired(),
            extensions,
        }))
    }
}

impl Issuer for Backend<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let cfg = &self.state.config.tokens;
        let client_grant = grant.owner_id.is_empty() || grant.owner_id == grant.client_id;
        let scope = scope_str(&grant.scope);
        let now = self.state.clock.now_ms();
        if client_grant {
            // client_credentials: one plain insert carrying the app's token epoch (the hot path; no family).
            let (access, rec) = self.new_token(cfg.access_ttl_secs);
            let record = crate::store::TokenRecord {
                kind: crate::store::TokenKind::Access,
                family: [0; 16],
                client_id: grant.client_id,
                owner_id: String::new(),
                scope,
                issued_at: now,
                expires_at: rec.expires_at,
                rotated: false,
                epoch: Some(self.app.token_epoch),
            };
            return match self.state.store.put_client_token(&rec.digest, &record) {
                Ok(()) => Ok(IssuedToken {
                    token: self.record_issued(access, None, record.scope),
                    refresh: None,
                    until: clock::oxide_expiry(cfg.access_ttl_secs),
                    token_type: TokenType::Bearer,
                }),
                Err(e) => {
                    tracing::error!(error = %e, "issuing a client token failed");
                    self.fail(e.into());
                    Err(())
                }
            };
        }
        // A redeemed code starts the family chosen at redemption.
        let family = self.family.take().unwrap_or_else(crypto::random_bytes);
        let (access, access_rec) = self.new_token(cfg.access_ttl_secs);
        let refresh = (self.allow_refresh && refresh_allowed(&scope))
            .then(|| self.new_token(cfg.refresh_ttl_secs));
        let r = self.state.store.issue_family(
            family,
            &grant.client_id,
            &grant.owner_id,
            &scope,
            now,
            access_rec,
            refresh.as_ref().map(|r| r.1),
        );
        match r {
            Ok(()) => Ok(IssuedToken {
                token: self.record_issued(access, refresh.as_ref().map(|r| r.0.clone()), scope),
                refresh: refresh.map(|r| r.0),
                until: clock::oxide_expiry(cfg.access_ttl_secs),
                token_type: TokenType::Bearer,
            }),
            Err(crate::error::Error::NotFound(what)) => {
                self.fail(OAuthError::invalid_grant(format!(
                    "the {what} of this grant no longer exists"
                )));
                Err(())
            }
            Err(e) => {
                tracing::error!(error = %e, "issuing tokens failed");
                self.fail(e.into());
                Err(())
            }
        }
    }

    fn refresh(&mut self, refresh: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        let cfg = &self.state.config.tokens;
        let old = crypto::sha256(refresh.as_bytes());
        // The next refresh token carries the old one's scope, so the rule is checked on that, not on `grant`'s
        // (possibly narrowed) scope: narrowing the access token does not end offline access.
        let granted = self.state.store.token_record(&old).map_err(drop)?;
        let (access, access_rec) = self.new_token(cfg.access_ttl_secs);
        let next = (self.allow_refresh && granted.is_some_and(|r| refresh_allowed(&r.scope)))
            .then(|| self.new_token(cfg.refresh_ttl_secs));
        let now = self.state.clock.now_ms();
        let scope = scope_str(&grant.scope);
        let r = self.state.store.rotate_refresh(
            &old,
            &self.app.client_id,
            &scope,
            now,
            access_rec,
            next.as_ref().map(|n| n.1),
        );
        match r {
            Ok(Rotated::Ok(_)) => Ok(RefreshedToken {
                token: self.record_issued(access, next.as_ref().map(|n| n.0.clone()), scope),
                refresh: next.map(|n| n.0),
                until: clock::oxide_expiry(cfg.access_ttl_secs),
                token_type: TokenType::Bearer,
            }),
            Ok(Rotated::Replayed) => {
                self.fail(OAuthError::invalid_grant(
                    "the refresh token was already used; its grant is revoked",
                ));
                Err(())
            }
            Ok(Rotated::Invalid) => {
                self.fail(OAuthError::invalid_grant("invalid refresh token"));
                Err(())
            }
            Err(e) => {
                tracing::error!(error = %e, "rotating a refresh token failed");
                self.fail(e.into());
                Err(())
            }
        }
    }

    fn recover_token<'b>(&'b self, token: &'b str) -> Result<Option<Grant>, ()> {
        let now = self.state.clock.now_ms();
        let rec = self
            .state
            .store
            .active_token(&crypto::sha256(token.as_bytes()), now)
            .map_err(drop)?;
        Ok(rec.map(|r| Grant {
            owner_id: r.owner_id,
            client_id: r.client_id,
            scope: r
                .scope
                .parse()
                .unwrap_or_else(|_| "none".parse().expect("static scope")),
            redirect_uri: self.issuer_url(),
            until: clock::oxide_unexpired(),
            extensions: Extensions::new(),
        }))
    }

    /// A live, unrotated refresh token. A rotated one is reported (and its family revoked) by `refresh`, which
    /// runs in the same transaction as the rotation; here it is simply handed on.
    fn recover_refresh<'b>(&'b self, token: &'b str) -> Result<Option<Grant>, ()> {
        let digest = crypto::sha256(token.as_bytes());
        let Some(rec) = self.state.store.token_record(&digest).map_err(drop)? else {
            return Ok(None);
        };
        if rec.kind != crate::store::TokenKind::Refresh {
            return Ok(None);
        }
        Ok(Some(Grant {
            owner_id: rec.owner_id,
            client_id: rec.client_id,
            scope: rec.scope.parse().map_err(drop)?,
            redirect_uri: self.issuer_url(),
            until: clock::oxide_unexpired(),
            extensions: Extensions::new(),
        }))
    }
}

/// PKCE (docs/endpoints.md#oauth): S256 only; required for public clients; a verifier without a challenge is a downgrade.
pub struct PkceExtension {
    public: bool,
    /// Why verification failed (reported as `invalid_grant`).
    pub failed: Option<&'static str>,
}

impl AuthzExtension for PkceExtension {
    fn extend(&mut self, request: &dyn AuthzRequest) -> Result<Extensions, ()> {
        let method = request.extension("code_challenge_method");
        let challenge = request.extension("code_challenge");
        if challenge.is_some() && method.as_deref() != Some("S256") {
            return Err(());
        }
        if let Some(c) = &challenge {
            // RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
            if c.len() != 43
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(());
            }
        }
        let pkce = if self.public {
            Pkce::required()
        } else {
            Pkce::optional()
        };
        let value = pkce.challenge(method, challenge)?;
        let mut ext = Extensions::new();
        if let Some(v) = value {
            ext.set(&pkce, v);
        }
        Ok(ext)
    }
}

impl TokenExtension for PkceExtension {
    fn extend(
        &mut self,
        request: &dyn TokenRequest,
        mut data: Extensions,
    ) -> Result<Extensions, ()> {
        let pkce = if self.public {
            Pkce::required()
        } else {
            Pkce::optional()
        };
        let challenge = data.remove(&pkce);
        let verifier = request.extension("code_verifier");
        match (&challenge, &verifier) {
            (None, Some(_)) => {
                self.failed =
                    Some("code_verifier sent but no code_challenge was made (PKCE downgrade)");
                return Err(());
            }
            (Some(_), None) => {
                self.failed = Some("code_verifier is required");
                return Err(());
            }
            _ => {}
        }
        if pkce.verify(challenge, verifier).is_err() {
            self.failed = Some("code_verifier does not match the code_challenge");
            return Err(());
        }
        Ok(Extensions::new())
    }
}
