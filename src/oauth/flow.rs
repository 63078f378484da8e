//! The adapters between Latchkey's parsed requests and oxide-auth's flows: the `Request` traits over [`Params`]
//! and the `Endpoint` traits over the per-request [`Backend`].

use std::borrow::Cow;

use oxide_auth::code_grant::{accesstoken, authorization, client_credentials, refresh};
use oxide_auth::primitives::prelude::{Authorizer, Issuer, Registrar};

use super::params::Params;
use super::primitives::{Backend, ClientIssuer};

/// One request as the flows see it: its parameters and the client identity established before the flow.
pub struct FlowRequest<'a> {
    pub params: &'a Params,
    pub client_id: &'a str,
    pub secret: Option<&'a str>,
    /// The code's redirect URI when the authorization request omitted it (then the token request may too).
    pub redirect_fallback: Option<String>,
}

impl FlowRequest<'_> {
    fn get(&self, k: &str) -> Option<Cow<'_, str>> {
        self.params.get(k).map(Cow::Borrowed)
    }
}

impl authorization::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.get("client_id")
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.get("scope")
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.get("redirect_uri")
    }
    fn state(&self) -> Option<Cow<'_, str>> {
        self.get("state")
    }
    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.get("response_type")
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key)
    }
}

impl accesstoken::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        self.get("code")
    }
    fn authorization(&self) -> accesstoken::Authorization<'_> {
        match self.secret {
            Some(s) => accesstoken::Authorization::UsernamePassword(
                Cow::Borrowed(self.client_id),
                Cow::Borrowed(s.as_bytes()),
            ),
            None => accesstoken::Authorization::Username(Cow::Borrowed(self.client_id)),
        }
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.get("redirect_uri")
            .or_else(|| self.redirect_fallback.as_deref().map(Cow::Borrowed))
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.get("grant_type")
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key)
    }
}

impl refresh::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        self.get("refresh_token")
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.get("scope")
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.get("grant_type")
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        self.secret
            .map(|s| (Cow::Borrowed(self.client_id), Cow::Borrowed(s.as_bytes())))
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key)
    }
}

impl client_credentials::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        self.secret
            .map(|s| (Cow::Borrowed(self.client_id), Cow::Borrowed(s.as_bytes())))
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.get("scope")
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.get("grant_type")
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key)
    }
}

impl authorization::Endpoint for Backend<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn extension(&mut self) -> &mut dyn authorization::Extension {
        self
    }
}

impl accesstoken::Endpoint for Backend<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
    fn extension(&mut self) -> &mut dyn accesstoken::Extension {
        self
    }
}

impl refresh::Endpoint for Backend<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
}

/// client_credentials' endpoint view: its own issuer (a client token, no family) and no extension data.
pub struct CredentialsEndpoint<'b, 'a>(pub ClientIssuer<'b, 'a>);

impl client_credentials::Endpoint for CredentialsEndpoint<'_, '_> {
    fn registrar(&self) -> &dyn Registrar {
        self.0 .0
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        &mut self.0
    }
    fn extension(&mut self) -> &mut dyn client_credentials::Extension {
        self
    }
}

impl client_credentials::Extension for CredentialsEndpoint<'_, '_> {
    fn extend(
        &mut self,
        _: &dyn client_credentials::Request,
    ) -> Result<oxide_auth::primitives::grant::Extensions, ()> {
        Ok(oxide_auth::primitives::grant::Extensions::new())
    }
}
