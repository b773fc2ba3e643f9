//! Mail templates: built-in defaults, overridable per tenant, rendered by MiniJinja with HTML
//! auto-escaping for the HTML part (customer-supplied names cannot inject markup).

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::store::mail::TemplateOverride;

pub const CREDENTIALS: &str = "credentials";

/// The kinds of mail whose templates a tenant may override.
pub const KINDS: [&str; 1] = [CREDENTIALS];

struct Defaults {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

fn defaults(kind: &str) -> Option<Defaults> {
    match kind {
        CREDENTIALS => Some(Defaults {
            subject: include_str!("templates/credentials.subject"),
            text: include_str!("templates/credentials.txt"),
            html: include_str!("templates/credentials.html"),
        }),
        _ => None,
    }
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("template {part}: {message}")]
pub struct TemplateError {
    pub part: &'static str,
    pub message: String,
}

/// Renders one kind of mail with the tenant's overrides over the defaults.
pub fn render(kind: &str, overrides: &TemplateOverride, context: &impl Serialize) -> Result<Rendered, TemplateError> {
    let defaults = defaults(kind).ok_or_else(|| TemplateError {
        part: "kind",
        message: format!("no mail kind {kind:?}"),
    })?;
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let parts = [
        (
            "subject",
            "mail.subject",
            overrides.subject.as_deref().unwrap_or(defaults.subject),
        ),
        (
            "text_body",
            "mail.txt",
            overrides.text_body.as_deref().unwrap_or(defaults.text),
        ),
        (
            "html_body",
            "mail.html",
            overrides.html_body.as_deref().unwrap_or(defaults.html),
        ),
    ];
    let mut out = Vec::with_capacity(3);
    for (part, name, source) in parts {
        let fail = |e: minijinja::Error| TemplateError {
            part,
            message: e.to_string(),
        };
        env.add_template_owned(name, source.to_owned()).map_err(fail)?;
        let value = minijinja::Value::from(minijinja::value::Serde(context));
        out.push(env.get_template(name).and_then(|t| t.render(value)).map_err(fail)?);
    }
    let html = out.pop().unwrap_or_default();
    let text = out.pop().unwrap_or_default();
    let subject = out.pop().unwrap_or_default();
    // A subject is one line, whatever the template's whitespace.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Rendered { subject, text, html })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> serde_json::Value {
        json!({
            "tenant": {"name": "Acme"},
            "customer": {"name": "<script>alert(1)</script> Ltd"},
            "recipient": {"email": "ada@example.com", "name": null},
            "portal_url": "https://licensing.example.com/portal",
            "account_based": false,
            "setup_url": null,
            "entitlements": [{"product": "Editor", "edition": "Pro", "plan": "Yearly", "offering": "Editor Pro yearly",
                              "sku": "ED-PRO-Y", "seats": 5, "expires": "2027-01-31", "activation_code": "AAAA-BBBB"}],
        })
    }

    #[test]
    fn renders_both_parts_and_escapes_html_only() {
        let rendered = render(CREDENTIALS, &TemplateOverride::default(), &context()).unwrap();
        assert_eq!(rendered.subject, "Your Editor licence from Acme");
        assert!(rendered.text.contains("Activation code: AAAA-BBBB"));
        assert!(
            rendered.text.contains("<script>alert(1)</script> Ltd"),
            "plain text is not escaped"
        );
        assert!(
            rendered.html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; Ltd"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.html.contains("https://licensing.example.com/portal"));
    }

    #[test]
    fn tenant_overrides_replace_parts_and_bad_templates_are_reported() {
        let overrides = TemplateOverride {
            subject: Some("{{ tenant.name }}: your code".into()),
            ..Default::default()
        };
        assert_eq!(
            render(CREDENTIALS, &overrides, &context()).unwrap().subject,
            "Acme: your code"
        );
        let broken = TemplateOverride {
            html_body: Some("{% for %}".into()),
            ..Default::default()
        };
        assert_eq!(
            render(CREDENTIALS, &broken, &context()).err().unwrap().part,
            "html_body"
        );
    }
}
