//! Mail templates: built-in defaults, overridable per tenant, rendered by MiniJinja with HTML
//! auto-escaping for the HTML part (customer-supplied names cannot inject markup). A tenant's
//! template runs under a budget, so it cannot stall the server.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::store::mail::TemplateOverride;

pub const CREDENTIALS: &str = "credentials";
/// A single-use link to sign in to the portal (not overridable yet).
pub const SIGN_IN: &str = "sign_in";

/// A staff member's invitation to the console, with their set-password link (not overridable).
pub const INVITATION: &str = "invitation";

/// Expiry reminders and notices to a customer's admins (`services::reminders`).
pub const EXPIRING: &str = "expiring";
pub const GRACE_STARTED: &str = "grace_started";
pub const EXPIRED: &str = "expired";

/// The kinds of mail whose templates a tenant may override.
pub const KINDS: [&str; 4] = [CREDENTIALS, EXPIRING, GRACE_STARTED, EXPIRED];

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
        SIGN_IN => Some(Defaults {
            subject: include_str!("templates/sign_in.subject"),
            text: include_str!("templates/sign_in.txt"),
            html: include_str!("templates/sign_in.html"),
        }),
        EXPIRING => Some(Defaults {
            subject: include_str!("templates/expiring.subject"),
            text: include_str!("templates/expiring.txt"),
            html: include_str!("templates/expiring.html"),
        }),
        GRACE_STARTED => Some(Defaults {
            subject: include_str!("templates/grace_started.subject"),
            text: include_str!("templates/grace_started.txt"),
            html: include_str!("templates/grace_started.html"),
        }),
        EXPIRED => Some(Defaults {
            subject: include_str!("templates/expired.subject"),
            text: include_str!("templates/expired.txt"),
            html: include_str!("templates/expired.html"),
        }),
        INVITATION => Some(Defaults {
            subject: include_str!("templates/invitation.subject"),
            text: include_str!("templates/invitation.txt"),
            html: include_str!("templates/invitation.html"),
        }),
        _ => None,
    }
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a tenant's template may spend on one part (subject, text or HTML body). MiniJinja's fuel
/// charges every instruction and the memory values take (about 64 bytes per unit), so loops,
/// recursion and string multiplication all run out of it; the output is capped separately.
/// A built-in template on a large order spends a few thousand units.
pub const FUEL: u64 = 200_000;
/// The largest rendered part, in bytes.
pub const MAX_PART_BYTES: usize = 256 * 1024;
/// The longest template source of one part, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// How much a render may spend: tenants' templates are budgeted; the built-in ones are ours, linear
/// in the order's size, and must always produce the buyer's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Limited,
    Unlimited,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse, or fails on the data (an unknown filter, a type error…).
    #[error("template {part}: {message}")]
    Invalid { part: &'static str, message: String },
    /// The template ran out of fuel or produced too much output.
    #[error("template {part} is too expensive to render: {message}")]
    TooExpensive { part: &'static str, message: String },
}

impl TemplateError {
    pub fn part(&self) -> &'static str {
        match self {
            TemplateError::Invalid { part, .. } | TemplateError::TooExpensive { part, .. } => part,
        }
    }
}

/// Collects a render's output and fails once it passes the cap, so a template cannot fill memory.
struct CappedOutput {
    bytes: Vec<u8>,
    cap: usize,
    exceeded: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            self.exceeded = true;
            return Err(std::io::Error::other("output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders one kind of mail with the tenant's overrides over the defaults. CPU-bound and, for a
/// tenant's template, up to the budget: call it off the async workers (`spawn_blocking`).
pub fn render(
    kind: &str,
    overrides: &TemplateOverride,
    context: &impl Serialize,
    budget: Budget,
) -> Result<Rendered, TemplateError> {
    let defaults = defaults(kind).ok_or_else(|| TemplateError::Invalid {
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
    let cap = match budget {
        Budget::Limited => {
            env.set_fuel(Some(FUEL));
            MAX_PART_BYTES
        }
        Budget::Unlimited => usize::MAX,
    };
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
        if budget == Budget::Limited && source.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError::TooExpensive {
                part,
                message: format!("longer than {MAX_SOURCE_BYTES} bytes"),
            });
        }
        let invalid = |e: minijinja::Error| TemplateError::Invalid {
            part,
            message: e.to_string(),
        };
        env.add_template_owned(name, source.to_owned()).map_err(invalid)?;
        let template = env.get_template(name).map_err(invalid)?;
        let value = minijinja::Value::from(minijinja::value::Serde(context));
        let mut output = CappedOutput {
            bytes: Vec::new(),
            cap,
            exceeded: false,
        };
        if let Err(error) = template.render_captured_to(value, &mut output).map(drop) {
            return Err(if output.exceeded {
                TemplateError::TooExpensive {
                    part,
                    message: format!("renders more than {MAX_PART_BYTES} bytes"),
                }
            } else if error.kind() == minijinja::ErrorKind::OutOfFuel {
                TemplateError::TooExpensive {
                    part,
                    message: "runs out of its render budget (too many steps or too much data)".into(),
                }
            } else {
                invalid(error)
            });
        }
        out.push(String::from_utf8_lossy(&output.bytes).into_owned());
    }
    let html = out.pop().unwrap_or_default();
    let text = out.pop().unwrap_or_default();
    let subject = out.pop().unwrap_or_default();
    // A subject is one line, whatever the template's whitespace.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Rendered { subject, text, html })
}

/// Renders a queued mail: the tenant's template under the budget, else (it fails or runs out of
/// budget on this data) the built-in one, because a broken template must not cost a buyer their
/// credentials. Answers the tenant template's error when it was replaced.
pub fn render_or_fallback(
    kind: &str,
    overrides: &TemplateOverride,
    context: &impl Serialize,
) -> Result<(Rendered, Option<TemplateError>), TemplateError> {
    match render(kind, overrides, context, Budget::Limited) {
        Ok(rendered) => Ok((rendered, None)),
        Err(error) => {
            let rendered = render(kind, &TemplateOverride::default(), context, Budget::Unlimited)?;
            Ok((rendered, Some(error)))
        }
    }
}

/// Sample data a template is tried on when it is saved: both variants of the credentials mail
/// (activation codes, and account-based with a set-up link), with a few order lines.
pub fn samples() -> [serde_json::Value; 2] {
    let line = |n: u32| {
        serde_json::json!({"product": format!("Product {n}"), "edition": "Edition", "plan": "Plan",
            "offering": "Offering", "sku": format!("SKU-{n}"), "seats": 5, "expires": "2030-01-01",
            "activation_code": format!("AAAA-BBBB-{n}")})
    };
    let base = |account_based: bool| {
        serde_json::json!({
            "tenant": {"name": "Tenant"}, "customer": {"name": "Customer"},
            "recipient": {"email": "buyer@example.com", "name": "Buyer"},
            "portal_url": "https://example.com/portal", "account_based": account_based,
            "setup_url": account_based.then_some("https://example.com/portal/set-password?token=x"),
            "setup_expires": account_based.then_some("2030-01-08 12:00 UTC"),
            "entitlements": (1..=3).map(line).collect::<Vec<_>>(),
            // Reminders and notices.
            "days_before": 7,
            "entitlement": {"id": "ent_sample", "sku": "SKU-1", "product": "Product 1", "seats": 5,
                            "expires": "2030-01-01", "grace_ends": "2030-01-08"},
        })
    };
    [base(false), base(true)]
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
        let rendered = render(CREDENTIALS, &TemplateOverride::default(), &context(), Budget::Limited).unwrap();
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
            render(CREDENTIALS, &overrides, &context(), Budget::Limited)
                .unwrap()
                .subject,
            "Acme: your code"
        );
        let broken = TemplateOverride {
            html_body: Some("{% for %}".into()),
            ..Default::default()
        };
        assert_eq!(
            render(CREDENTIALS, &broken, &context(), Budget::Limited)
                .err()
                .unwrap()
                .part(),
            "html_body"
        );
    }

    fn expensive(template: &str) -> TemplateError {
        let overrides = TemplateOverride {
            text_body: Some(template.into()),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let error = render(CREDENTIALS, &overrides, &context(), Budget::Limited)
            .err()
            .unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{template}: {:?}",
            started.elapsed()
        );
        error
    }

    #[test]
    fn tenant_templates_render_under_a_budget() {
        let loops = "{% for a in range(12000) %}{% for b in range(12000) %}{{ a }}{% endfor %}{% endfor %}";
        let memory = "{% set x = 'x' * 90000000 %}{{ x|length }}";
        let output = "{% for a in range(5000) %}{{ 'y' * 100 }}{% endfor %}";
        let doubling =
            "{% set ns = namespace(s='xy') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}";
        for template in [loops, memory, output, doubling] {
            let error = expensive(template);
            assert!(
                matches!(error, TemplateError::TooExpensive { part: "text_body", .. }),
                "{template}: {error}"
            );
        }
        let long = "x".repeat(MAX_SOURCE_BYTES + 1);
        assert!(matches!(expensive(&long), TemplateError::TooExpensive { .. }));
        assert!(matches!(expensive("{% for %}"), TemplateError::Invalid { .. }));
    }

    #[test]
    fn the_built_in_templates_fit_the_budget_and_replace_a_failing_one() {
        let mut big = context();
        let line = big["entitlements"][0].clone();
        big["entitlements"] = serde_json::Value::Array(vec![line; 100]);
        render(CREDENTIALS, &TemplateOverride::default(), &big, Budget::Limited)
            .expect("a 100-line order fits the budget");
        for sample in samples() {
            render(CREDENTIALS, &TemplateOverride::default(), &sample, Budget::Limited).unwrap();
        }
        let overrides = TemplateOverride {
            subject: Some("{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}".into()),
            ..Default::default()
        };
        let (rendered, replaced) = render_or_fallback(CREDENTIALS, &overrides, &context()).unwrap();
        assert_eq!(rendered.subject, "Your Editor licence from Acme");
        assert!(matches!(
            replaced,
            Some(TemplateError::TooExpensive { part: "subject", .. })
        ));
    }
}
