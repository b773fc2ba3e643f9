//! Secrets in mail bodies: activation codes, password set-up links and sign-in links are what a
//! mail exists to deliver, and nothing needs them in our database once the mail has ended. The
//! worker knows them from the mail's template inputs and removes them, in the forms a rendered
//! body can hold (as written, and HTML-escaped), from what it keeps.

use serde_json::Value;

/// What stands where a secret was.
pub const REMOVED: &str = "[removed]";

/// The secrets a mail's template inputs carry, longest first (a link before its token).
pub fn secrets(context: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(lines) = context["entitlements"].as_array() {
        found.extend(
            lines
                .iter()
                .filter_map(|line| line["activation_code"].as_str())
                .map(str::to_owned),
        );
    }
    for key in ["setup_url", "link_url"] {
        let Some(url) = context[key].as_str() else { continue };
        found.push(url.to_owned());
        // The token alone too: a template may print it without the rest of the link.
        let query = url.split_once('?').map_or("", |(_, query)| query);
        found.extend(
            query
                .split('&')
                .filter_map(|pair| pair.split_once('=').map(|(_, value)| value))
                .filter(|value| value.len() >= 16)
                .map(str::to_owned),
        );
    }
    found.retain(|secret| !secret.is_empty());
    found.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    found.dedup();
    found
}

/// `text` with every secret replaced, as written and as the HTML template escapes it.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        text = text.replace(secret.as_str(), REMOVED);
        let escaped = html_escape(secret);
        if escaped != *secret {
            text = text.replace(&escaped, REMOVED);
        }
    }
    text
}

/// The escaping of the mail templates' HTML parts (MiniJinja's).
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2f;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_links_and_tokens_are_removed_in_text_and_html() {
        let context = json!({
            "entitlements": [{"activation_code": "ABCD-EFGH-IJKL"}, {"activation_code": null}],
            "setup_url": "https://l.example/portal/set-password?token=tok0123456789abcdefXYZ",
            "link_url": null,
        });
        let secrets = secrets(&context);
        assert_eq!(secrets.len(), 3, "{secrets:?}");
        let text = "Code ABCD-EFGH-IJKL, link https://l.example/portal/set-password?token=tok0123456789abcdefXYZ, \
                    token tok0123456789abcdefXYZ.";
        let html =
            "<a href=\"https:&#x2f;&#x2f;l.example&#x2f;portal&#x2f;set-password?token=tok0123456789abcdefXYZ\">";
        let text = redact(text, &secrets);
        let html = redact(html, &secrets);
        for part in [&text, &html] {
            assert!(!part.contains("ABCD-EFGH") && !part.contains("tok0123456789"), "{part}");
        }
        assert_eq!(text, "Code [removed], link [removed], token [removed].");
        assert!(html.contains("[removed]"));
        assert!(super::secrets(&json!({"tenant": {"name": "Acme"}})).is_empty());
    }
}
