//! oxide-auth's primitives (Registrar, Authorizer, Issuer) and extensions on a per-request handle: no endpoint
//! object, no global lock, and no store writes. Client authentication already happened (asynchronously, see
//! `client_auth.rs`), so `Registrar::check` only confirms the identity the flow was given. The records a flow
//! needs (the presented code, the presented refresh token) are read by the handler before it runs the flow; the
//! primitives compute one [`Outcome`] (the code to store, the tokens to issue, the rotation to apply, or the
//! precise RFC error, which oxide-auth's `Err(())` cannot carry), and the handler commits it (`outcome.rs`).

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
use super::jwt_access::{self, Holder};
use super::outcome::{Issued, Outcome};
use crate::clock;
use crate::core::token_policy::{self, Lifetime};
use crate::crypto;
use crate::model::app::AccessTokenFormat;
use crate::model::oidc::Amr;
use crate::model::{redirect, App, ClientType, GrantType};
use crate::state::AppState;
use crate::store::token::{FirstTokens, NewToken};
use crate::store::{CodeRecord, GrantRecord, Lineage, Subject, TokenKind, TokenRecord};

/// Everything one request's flow needs; cheap to build.
pub struct Backend<'a> {
    pub state: &'a AppState,
    /// The client of this request: at the authorization endpoint the one named by `client_id`, at the token
    /// endpoint the authenticated one.
    pub app: &'a App,
    /// Whether the authorization request carried `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    /// When the resource owner signed in: at the authorization endpoint the browser session's (the handler sets
    /// it), the code's `auth_time`; at the token endpoint the redeemed code's, for a JWT access token's
    /// `auth_time` (a refresh has it when the handler sets it from the family).
    pub auth_time: Option<clock::Millis>,
    /// The request's `nonce` and the session's `amr` and `sid` (the authorize handler sets them): the code's.
    /// `amr` is, like `auth_time`, the redeemed code's at the token endpoint.
    pub nonce: Option<String>,
    pub amr: Vec<Amr>,
    pub sid: Option<String>,
    /// The presented code's record as the handler read it (the redemption re-checks it when it commits).
    pub code: Option<CodeRecord>,
    /// The presented refresh token's record as the handler read it (the rotation re-checks it when it commits).
    pub refresh_token: Option<TokenRecord>,
    /// Whether the issued token may come with a refresh token.
    pub allow_refresh: bool,
    /// PKCE is required (a public client).
    public: bool,
    /// What the flow decided so far.
    outcome: Option<Outcome>,
}

impl<'a> Backend<'a> {
    pub fn new(state: &'a AppState, app: &'a App) -> Self {
        Self {
            state,
            app,
            redirect_uri_sent: true,
            auth_time: None,
            nonce: None,
            amr: Vec::new(),
            sid: None,
            code: None,
            refresh_token: None,
            allow_refresh: token_policy::app_refreshes(&app.grant_types),
            public: app.client_type == ClientType::Public,
            outcome: None,
        }
    }

    /// The flow's outcome, given how oxide-auth's executor ended (`Err` with its own, less precise, error). The
    /// first refusal wins: a primitive's precise one over oxide-auth's.
    pub fn finish(&mut self, flow: Result<(), OAuthError>) -> Outcome {
        if let Err(e) = flow {
            self.fail(e);
        }
        self.outcome
            .take()
            .unwrap_or_else(|| Outcome::Refused(OAuthError::server_error()))
    }

    /// Records a refusal: the verdict of a pending redemption (which still commits), else the outcome.
    fn fail(&mut self, e: OAuthError) {
        match &mut self.outcome {
            Some(Outcome::Redeem {
                verdict: v @ None, ..
            }) => *v = Some(Err(e)),
            None => self.outcome = Some(Outcome::Refused(e)),
            Some(_) => {}
        }
    }

    /// A fresh random token (plaintext, and its digest with its expiry under the token policy): refresh tokens,
    /// which are opaque whatever the client's access token format.
    fn new_token(&self, lifetime: Lifetime) -> (String, NewToken) {
        let token = crypto::random_token();
        let digest = crypto::sha256(token.as_bytes());
        let expires_at = lifetime.expires_at(&self.state.config.tokens, self.state.clock.now_ms());
        (token, NewToken { digest, expires_at })
    }

    /// The access token of this request in its client's format: random (opaque), or an RFC 9068 JWT for `holder`
    /// (`jwt_access.rs`); and what the store keeps of it (its digest and expiry), whether or not it keeps it.
    /// `None` when a JWT cannot be signed (no key; logged).
    fn mint_access(&self, scope: &str, holder: Holder<'_>) -> Option<(String, NewToken)> {
        let now = self.state.clock.now_ms();
        let expires_at = Lifetime::Access.expires_at(&self.state.config.tokens, now);
        let token = match self.app.oidc.access_token_format {
            AccessTokenFormat::Opaque => crypto::random_token(),
            AccessTokenFormat::Jwt => {
                jwt_access::sign(self.state, self.app, holder, scope, expires_at)?
            }
        };
        let digest = crypto::sha256(token.as_bytes());
        Some((token, NewToken { digest, expires_at }))
    }

    /// The token policy's lifetime under this server's `[tokens]` config.
    fn secs(&self, lifetime: Lifetime) -> u64 {
        lifetime.secs(&self.state.config.tokens)
    }

    fn issuer_url(&self) -> url::Url {
        url::Url::parse(&self.state.issuer)
            .unwrap_or_else(|_| url::Url::parse("http://localhost/").expect("static URL"))
    }

    /// The client_credentials token of `grant`: it carries the app's token epoch instead of a family. An opaque
    /// one is stored with it; a JWT one carries it and is not stored.
    fn client_token(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let ttl = self.secs(Lifetime::Access);
        let scope = scope_str(&grant.scope);
        let Some((access, token)) = self.mint_access(&scope, Holder::Client) else {
            self.fail(OAuthError::server_error());
            return Err(());
        };
        let issued = Issued {
            access: access.clone(),
            refresh: None,
            scope: scope.clone(),
        };
        if self.app.oidc.access_token_format == AccessTokenFormat::Jwt {
            self.outcome = Some(Outcome::Signed(issued));
            return Ok(bearer(access, None, ttl));
        }
        let record = TokenRecord {
            kind: TokenKind::Access,
            lineage: Lineage::Epoch(self.app.token_epoch),
            client_id: grant.client_id,
            subject: Subject::Client,
            scope: scope.clone(),
            issued_at: self.state.clock.now_ms(),
            expires_at: token.expires_at,
            rotated: false,
            sibling: None,
        };
        self.outcome = Some(Outcome::Client {
            digest: token.digest,
            record,
            issued,
        });
        Ok(bearer(access, None, ttl))
    }
}

/// What oxide-auth's executor is handed back (the response is built from [`Issued`], not from this).
fn bearer(access: String, refresh: Option<String>, ttl: u64) -> IssuedToken {
    IssuedToken {
        token: access,
        refresh,
        until: clock::oxide_expiry(ttl),
        token_type: TokenType::Bearer,
    }
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

    /// The token policy's scope rule ([`token_policy::scope_allowed`], [`token_policy::default_scope`]).
    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let allowed = &self.app.scopes;
        let scope = match scope {
            Some(s) if token_policy::scope_allowed(allowed, s.iter()) => s,
            Some(_) => return Err(RegistrarError::Unspecified),
            None => token_policy::default_scope(allowed)
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
                nonce: self.nonce.take(),
                amr: std::mem::take(&mut self.amr),
                sid: self.sid.take(),
            },
            expires_at: Lifetime::Code.expires_at(&self.state.config.tokens, now),
            redeemed: None,
        };
        self.outcome = Some(Outcome::Code {
            digest: crypto::sha256(code.as_bytes()),
            record,
        });
        Ok(code)
    }

    /// The grant of the code the handler read. A code of this client goes on to be redeemed whatever the rest of
    /// the flow decides (the attempt uses it up; the store re-checks it); an unknown code or another client's is
    /// refused without a write.
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let Some(rec) = self.code.take() else {
            self.fail(OAuthError::invalid_grant("unknown authorization code"));
            return Ok(None);
        };
        if rec.grant.client_id != self.app.client_id {
            self.fail(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
            return Ok(None);
        }
        self.auth_time = Some(rec.grant.auth_time);
        self.amr = rec.grant.amr.clone();
        self.outcome = Some(Outcome::Redeem {
            digest: crypto::sha256(code.as_bytes()),
            family: crypto::random_bytes(),
            now: self.state.clock.now_ms(),
            verdict: None,
        });
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

impl Backend<'_> {
    /// The access token of a user's grant (the code's, or the refresh token's), carrying the sign-in the handler
    /// set; a token that cannot be minted (no signing key) fails the flow with a server error.
    fn mint_user_access(&mut self, owner_id: &str, scope: &str) -> Result<(String, NewToken), ()> {
        let holder = Holder::User {
            id: owner_id,
            auth_time: self.auth_time,
            amr: &self.amr,
        };
        let minted = self.mint_access(scope, holder);
        minted.ok_or_else(|| self.fail(OAuthError::server_error()))
    }
}

/// The code and refresh grants' issuer (client_credentials has its own, [`ClientIssuer`]).
impl Issuer for Backend<'_> {
    /// The first tokens of the family the redeemed code starts.
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let ttl = self.secs(Lifetime::Access);
        let scope = scope_str(&grant.scope);
        let (access, access_rec) = self.mint_user_access(&grant.owner_id, &scope)?;
        let refresh = (self.allow_refresh && token_policy::scope_refreshes(&scope))
            .then(|| self.new_token(Lifetime::Refresh));
        let Some(Outcome::Redeem { verdict, .. }) = &mut self.outcome else {
            tracing::error!("tokens were about to be issued without a redeemed code");
            return Err(());
        };
        let tokens = FirstTokens {
            access: access_rec,
            refresh: refresh.as_ref().map(|r| r.1),
        };
        let refresh = refresh.map(|r| r.0);
        let issued = Issued {
            access: access.clone(),
            refresh: refresh.clone(),
            scope,
        };
        *verdict = Some(Ok((issued, tokens)));
        Ok(bearer(access, refresh, ttl))
    }

    fn refresh(&mut self, refresh: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        let scope = scope_str(&grant.scope);
        let (access, access_rec) = self.mint_user_access(&grant.owner_id, &scope)?;
        // The next refresh token carries the old one's scope, so the rule is asked of that, not of `grant`'s
        // (possibly narrowed) scope.
        let granted = self.refresh_token.as_ref();
        let next = (self.allow_refresh
            && granted.is_some_and(|r| token_policy::scope_refreshes(&r.scope)))
        .then(|| self.new_token(Lifetime::Refresh));
        let next_token = next.as_ref().map(|n| n.0.clone());
        self.outcome = Some(Outcome::Rotate {
            old: crypto::sha256(refresh.as_bytes()),
            scope: scope.clone(),
            now: self.state.clock.now_ms(),
            access: access_rec,
            refresh: next.map(|n| n.1),
            issued: Issued {
                access: access.clone(),
                refresh: next_token.clone(),
                scope,
            },
        });
        Ok(RefreshedToken {
            token: access,
            refresh: next_token,
            until: clock::oxide_expiry(self.secs(Lifetime::Access)),
            token_type: TokenType::Bearer,
        })
    }

    /// oxide-auth's resource flow is not used (bearer authentication reads the store itself).
    fn recover_token<'b>(&'b self, _: &'b str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    /// The refresh token the handler read, if it is one. Whether it is still live (unrotated, unexpired, its
    /// family unrevoked) is decided when the rotation commits, in the same transaction that reports a rotated one
    /// (and revokes its family).
    fn recover_refresh<'b>(&'b self, _: &'b str) -> Result<Option<Grant>, ()> {
        let Some(rec) = &self.refresh_token else {
            return Ok(None);
        };
        if rec.kind != TokenKind::Refresh {
            return Ok(None);
        }
        Ok(Some(Grant {
            // oxide-auth's convention for a client's own grant: the client is the owner.
            owner_id: rec.subject.user_id().unwrap_or(&rec.client_id).to_owned(),
            client_id: rec.client_id.clone(),
            scope: rec.scope.parse().map_err(drop)?,
            redirect_uri: self.issuer_url(),
            until: clock::oxide_unexpired(),
            extensions: Extensions::new(),
        }))
    }
}

/// The client_credentials flow's issuer: a token for the client itself, without family.
pub struct ClientIssuer<'b, 'a>(pub &'b mut Backend<'a>);

impl Issuer for ClientIssuer<'_, '_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        self.0.client_token(grant)
    }

    fn refresh(&mut self, _: &str, _: Grant) -> Result<RefreshedToken, ()> {
        Err(())
    }

    fn recover_token<'b>(&'b self, _: &'b str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    fn recover_refresh<'b>(&'b self, _: &'b str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }
}

/// PKCE (docs/endpoints.md#oauth): S256 only; required for public clients; a verifier without a challenge is a
/// downgrade.
impl AuthzExtension for Backend<'_> {
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
        let pkce = self.pkce();
        let value = pkce.challenge(method, challenge)?;
        let mut ext = Extensions::new();
        if let Some(v) = value {
            ext.set(&pkce, v);
        }
        Ok(ext)
    }
}

impl TokenExtension for Backend<'_> {
    /// A failed verification is `invalid_grant`.
    fn extend(
        &mut self,
        request: &dyn TokenRequest,
        mut data: Extensions,
    ) -> Result<Extensions, ()> {
        let pkce = self.pkce();
        let challenge = data.remove(&pkce);
        let verifier = request.extension("code_verifier");
        let why = match (&challenge, &verifier) {
            (None, Some(_)) => "code_verifier sent but no code_challenge was made (PKCE downgrade)",
            (Some(_), None) => "code_verifier is required",
            _ => match pkce.verify(challenge, verifier) {
                Ok(()) => return Ok(Extensions::new()),
                Err(()) => "code_verifier does not match the code_challenge",
            },
        };
        self.fail(OAuthError::invalid_grant(why));
        Err(())
    }
}

impl Backend<'_> {
    fn pkce(&self) -> Pkce {
        if self.public {
            Pkce::required()
        } else {
            Pkce::optional()
        }
    }
}
