//! Rocket.Chat's OAuth Proxy (`app/lib/server/oauth/proxy.ts` and `OAuth.launchLogin`): for the services listed
//! in `Accounts_OAuth_Proxy_services`, the upstream sends the browser back to `<Accounts_OAuth_Proxy_host>/oauth_redirect`
//! (the one redirect URI registered at the upstream, shared by many workspaces), and the original redirect rides in
//! `state` as `<callback URL>!<state>`; the proxy forwards the browser to that callback with the inner state, so
//! `/_oauth/<service>` checks state as without the proxy. The token request names the same `redirect_uri`.

use crate::core::provider;
use crate::error::Result;
use crate::model::builtin_setting::{PROXY_HOST, PROXY_SERVICES};
use crate::model::provider::SettingValue;
use crate::state::AppState;

/// The Proxy's two RC-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    /// Comma-separated service names; whitespace anywhere is ignored, as RC strips it.
    pub services: String,
}

impl Proxy {
    /// Whether `service`'s redirects go through the proxy: listed, and a host is set.
    pub fn proxies(&self, service: &str) -> bool {
        let list: String = self
            .services
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        !self.host.is_empty() && list.split(',').any(|s| s == service)
    }

    /// The `redirect_uri` and `state` that `service`'s authorization request carries: through the proxy for a
    /// listed service, else `callback` and `state` as they are.
    pub fn redirect(&self, service: &str, callback: &str, state: &str) -> (String, String) {
        if self.proxies(service) {
            (
                format!("{}/oauth_redirect", self.host),
                format!("{callback}!{state}"),
            )
        } else {
            (callback.to_owned(), state.to_owned())
        }
    }
}

/// The Proxy's settings as stored (RC's defaults until written).
pub async fn settings(s: &AppState) -> Result<Proxy> {
    let text = |v| match v {
        SettingValue::Str(v) => v,
        SettingValue::Bool(_) => String::new(),
    };
    Ok(Proxy {
        host: text(provider::setting(&s.store, PROXY_HOST).await?),
        services: text(provider::setting(&s.store, PROXY_SERVICES).await?),
    })
}

/// `service`'s authorization `redirect_uri` and `state` (see [`Proxy::redirect`]).
pub async fn redirect(s: &AppState, service: &str, state: &str) -> Result<(String, String)> {
    Ok(settings(s)
        .await?
        .redirect(service, &super::callback_url(s, service), state))
}

/// The `redirect_uri` the token request names for `service`: the one its authorization request carried.
pub async fn redirect_uri(s: &AppState, service: &str) -> Result<String> {
    Ok(redirect(s, service, "").await?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(services: &str) -> Proxy {
        Proxy {
            host: "https://oauth-proxy.rocket.chat".into(),
            services: services.into(),
        }
    }

    const CALLBACK: &str = "https://chat.example/_oauth/google";

    #[test]
    fn a_listed_service_goes_through_the_proxy_with_its_redirect_in_state() {
        let p = proxy(" github, google ,\tfacebook");
        assert_eq!(
            p.redirect("google", CALLBACK, "s1"),
            (
                "https://oauth-proxy.rocket.chat/oauth_redirect".to_owned(),
                format!("{CALLBACK}!s1")
            )
        );
    }

    #[test]
    fn others_and_an_empty_host_keep_the_callback() {
        let direct = (CALLBACK.to_owned(), "s1".to_owned());
        assert_eq!(proxy("github").redirect("google", CALLBACK, "s1"), direct);
        assert_eq!(proxy("").redirect("google", CALLBACK, "s1"), direct);
        assert_eq!(
            proxy("googlex,goo").redirect("google", CALLBACK, "s1"),
            direct,
            "whole names only"
        );
        let no_host = Proxy {
            host: String::new(),
            services: "google".into(),
        };
        assert_eq!(no_host.redirect("google", CALLBACK, "s1"), direct);
    }
}
