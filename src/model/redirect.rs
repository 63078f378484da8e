//! Redirect-URI rules (docs/endpoints.md#apps, RFC 8252): what an app may register and how a requested URI matches.

use crate::error::{Error, Field, Result};

/// Which hosts an `http` (not `https`) redirect URI may name. Only loopback by default (RFC 8252 §8.3); a local
/// test setup (docker-compose service names, `*.local` hosts) needs any host, which `[apps]
/// allow_http_redirect_uris` (on under `--dev`) allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpRedirects {
    #[default]
    LoopbackOnly,
    AnyHost,
}

/// Splits a Rocket.Chat-style list (commas or newlines), trims, drops empties, and validates each URI.
pub fn parse_list(raw: &str, http: HttpRedirects) -> Result<Vec<String>> {
    let uris: Vec<String> = raw
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if uris.is_empty() {
        return Err(Error::invalid(Field::RedirectUri, "no redirect URI given"));
    }
    for u in &uris {
        validate_with(u, http)?;
    }
    Ok(uris)
}

/// One URI: absolute, no fragment; `https`, or `http` on a loopback host, or a private-use scheme in reverse-domain
/// form (`com.example.app:/cb`). Never `javascript:`, `data:`, `file:`.
pub fn validate(uri: &str) -> Result<()> {
    validate_with(uri, HttpRedirects::LoopbackOnly)
}

/// [`validate`], with `http` on any host when `http` is [`HttpRedirects::AnyHost`].
pub fn validate_with(uri: &str, http: HttpRedirects) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(Field::RedirectUri, format!("{why}: {uri}")));
    if uri.len() > 2048 {
        return bad("too long");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace");
    }
    let Ok(url) = url::Url::parse(uri) else {
        return bad("not an absolute URI");
    };
    if url.fragment().is_some() {
        return bad("has a fragment");
    }
    match url.scheme() {
        "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return bad("has no host");
            }
        }
        "http" => {
            if url.host_str().is_none_or(str::is_empty) {
                return bad("has no host");
            }
            if http == HttpRedirects::LoopbackOnly && !is_loopback(&url) {
                return bad("http is only allowed on a loopback host");
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            return bad("forbidden scheme");
        }
        s if s.contains('.') && s.split('.').all(|p| !p.is_empty()) => {}
        _ => return bad("custom schemes must be in reverse-domain form (com.example.app:/cb)"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry credentials");
    }
    Ok(())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// Whether `requested` matches one `registered` URI: exact string comparison, except that a loopback `http` URI may
/// use any port (RFC 8252 §7.3).
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    // The URL parser drops tabs and newlines and trims spaces, so check the raw text as `validate` does.
    if requested.len() > 2048
        || requested
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && is_loopback(&a)
        && a.host() == b.host()
        && a.path() == b.path()
        && a.query() == b.query()
        && b.fragment().is_none()
        && b.username().is_empty()
        && b.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_allowed_forms() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:3000/callback",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_the_dangerous_forms() {
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "http://example.com/cb",
            "https://app.example.com/cb#frag",
            "/relative/path",
            "myapp:/cb",
            "https://user:pw@example.com/cb",
            "",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_splits_on_commas_and_newlines() {
        let l = parse_list(
            " https://a.example/cb ,\nhttp://127.0.0.1/cb\n\n",
            HttpRedirects::LoopbackOnly,
        )
        .unwrap();
        assert_eq!(l, vec!["https://a.example/cb", "http://127.0.0.1/cb"]);
        assert!(parse_list(" , \n", HttpRedirects::AnyHost).is_err());
        assert!(parse_list(
            "https://a.example/cb, http://evil.example/cb",
            HttpRedirects::LoopbackOnly
        )
        .is_err());
        // A local test setup may allow http on any host, but never the other rules.
        let any = HttpRedirects::AnyHost;
        for ok in [
            "http://app:3000/cb",
            "http://myapp.local/cb",
            "http://10.0.0.5/cb",
        ] {
            assert!(validate(ok).is_err(), "{ok}");
            assert!(validate_with(ok, any).is_ok(), "{ok}");
        }
        for bad in ["http://app/cb#f", "http://u:p@app/cb", "javascript://app/x"] {
            assert!(validate_with(bad, any).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_port_may_vary_but_nothing_else() {
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(matches("http://localhost:1/cb", "http://localhost:2/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:1/other"));
        assert!(!matches("https://a.example/cb", "https://a.example:444/cb"));
        assert!(!matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!matches("http://127.0.0.1/cb", "http://localhost/cb"));
    }

    // Fuzz find (redirect_uri): `http://127.0.0\t1:51234/cb` matched (the URL parser drops tabs); now checked raw.
    #[test]
    fn a_request_with_whitespace_or_controls_never_matches() {
        let reg = "http://127.0.0.1/cb";
        for req in [
            "http://127.0.0\t1:51234/cb",
            "http://127.0.0.1:5/c\tb",
            "http://127.0.0.1:5/cb\n",
            " http://127.0.0.1:5/cb",
            "http://127.0.0.1:5/cb\r",
        ] {
            assert!(validate(req).is_err(), "{req:?}");
            assert!(!matches(reg, req), "{req:?}");
        }
        assert!(matches(reg, "http://127.0.0.1:5/cb"));
    }

    proptest! {
        #[test]
        fn validation_never_panics(s in "\\PC{0,80}") {
            let _ = validate(&s);
            let _ = parse_list(&s, HttpRedirects::AnyHost);
        }

        #[test]
        fn https_uris_with_plain_paths_are_valid(host in "[a-z]{1,12}\\.[a-z]{2,6}", path in "(/[a-zA-Z0-9_-]{0,10}){0,4}") {
            let uri = format!("https://{host}{path}");
            prop_assert!(validate(&uri).is_ok());
            prop_assert!(matches(&uri, &uri));
        }

        #[test]
        fn accepted_uris_never_use_a_forbidden_scheme(s in "[a-zA-Z.+-]{1,12}:[ -~]{0,30}") {
            if validate(&s).is_ok() {
                let lower = s.to_ascii_lowercase();
                prop_assert!(!lower.starts_with("javascript:") && !lower.starts_with("data:") && !lower.starts_with("file:"));
                prop_assert!(!s.contains('#'));
            }
        }
    }
}
