//! The sign-in page's provider buttons: each enabled provider that shows one, as the provider catalogue describes
//! it (label, colors), linking to `/login/<service>`. The page knows the catalogue, not the federated flow behind
//! the link.

use crate::model::provider::Provider;
use crate::store::Store;

/// A sign-in button for an upstream provider.
pub struct ProviderButton {
    pub href: String,
    pub label: String,
    pub color: String,
    pub text_color: String,
}

/// Buttons for every enabled provider that shows one; none when the catalogue cannot be read (the password form
/// still works).
pub async fn buttons(store: &Store, return_to: &str) -> Vec<ProviderButton> {
    let providers = crate::core::provider::enabled(store)
        .await
        .unwrap_or_default();
    providers
        .iter()
        .filter(|p| p.show_button)
        .map(|p| button(p, return_to))
        .collect()
}

fn button(p: &Provider, return_to: &str) -> ProviderButton {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let label = if p.button_label_text.trim().is_empty() {
        format!("Sign in with {}", p.name)
    } else {
        p.button_label_text.clone()
    };
    ProviderButton {
        href: format!("/login/{}?{q}", p.service_key()),
        label,
        color: css_color(&p.button_color, "#1d74f5"),
        text_color: css_color(&p.button_label_color, "#FFFFFF"),
    }
}

/// Only `#rgb`/`#rrggbb` colors reach the page's style attribute.
fn css_color(c: &str, fallback: &str) -> String {
    let ok = c.starts_with('#')
        && matches!(c.len(), 4 | 7)
        && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        c.to_owned()
    } else {
        fallback.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_sanitized() {
        assert_eq!(css_color("#abc", "#000"), "#abc");
        assert_eq!(css_color("#A1B2C3", "#000"), "#A1B2C3");
        assert_eq!(css_color("red;background:url(x)", "#000"), "#000");
        assert_eq!(css_color("#12345g", "#000"), "#000");
    }
}
