//! Who a mail says it is from. The sender *address* is the operator's decision (their relay, their
//! domain's reputation, their SPF/DKIM): tenants choose only among the domains the operator allows.
//! Tenants set the display name, which is cleaned so it cannot add header lines.

use super::{Email, RuleViolation};

/// Longest display name kept, in characters (RFC 5322 lines should stay under 78).
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// The operator's sender rules: the global address, and the domains tenants may send from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderPolicy {
    default_address: String,
    /// Lower-case domains; empty means tenants cannot choose an address at all.
    domains: Vec<String>,
}

impl SenderPolicy {
    pub fn new(default_address: impl Into<String>, domains: Vec<String>) -> SenderPolicy {
        SenderPolicy {
            default_address: default_address.into(),
            domains: domains.into_iter().map(|d| d.trim().to_ascii_lowercase()).collect(),
        }
    }

    pub fn default_address(&self) -> &str {
        &self.default_address
    }

    /// Whether `address` may be used as a sender: the operator's own address, or an address in
    /// one of the allowed domains (exactly: a subdomain is another domain, with its own DNS).
    pub fn allows(&self, address: &str) -> bool {
        if address.eq_ignore_ascii_case(&self.default_address) {
            return true;
        }
        let Ok(email) = Email::parse(address) else {
            return false;
        };
        let Some((_, domain)) = email.as_str().rsplit_once('@') else {
            return false;
        };
        self.domains.iter().any(|allowed| allowed.eq_ignore_ascii_case(domain))
    }

    /// Checks a tenant's requested sender address when the template is saved.
    pub fn check(&self, address: &str) -> Result<(), RuleViolation> {
        Email::parse(address)?;
        if self.allows(address) {
            Ok(())
        } else if self.domains.is_empty() {
            Err(RuleViolation::new(
                "sender_not_allowed",
                "this server sends from its own address only: leave from_address unset",
            ))
        } else {
            Err(RuleViolation::new(
                "sender_not_allowed",
                format!(
                    "from_address must be in one of these domains: {}",
                    self.domains.join(", ")
                ),
            ))
        }
    }

    /// The address a mail is sent from: the requested one when allowed, else the operator's.
    /// (Templates and mails stored by older versions may hold any address.)
    pub fn address_for(&self, requested: Option<&str>) -> String {
        match requested {
            Some(address) if self.allows(address) => address.to_owned(),
            _ => self.default_address.clone(),
        }
    }
}

/// A display name safe for a `From:` header: control characters (CR, LF, tabs…) become spaces,
/// runs of whitespace collapse, and it is cut to [`MAX_DISPLAY_NAME_CHARS`] characters.
pub fn clean_display_name(raw: &str) -> String {
    let spaced: String = raw.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_DISPLAY_NAME_CHARS)
        .collect()
}

/// Checks a display name a tenant saves: refused rather than silently changed, so what the tenant
/// sees is what buyers see.
pub fn check_display_name(name: &str) -> Result<(), RuleViolation> {
    if name.chars().any(char::is_control) {
        return Err(RuleViolation::new(
            "invalid_from_name",
            "from_name must be one line without control characters",
        ));
    }
    if name.trim().is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(RuleViolation::new(
            "invalid_from_name",
            format!("from_name must be 1-{MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Parses the operator's comma-separated list of sender domains.
pub fn parse_domains(list: &str) -> Result<Vec<String>, String> {
    let mut domains = Vec::new();
    for domain in list.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let valid = domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(format!("{domain:?} is not a domain name"));
        }
        domains.push(domain.to_ascii_lowercase());
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_operators_address_and_domains_are_allowed() {
        let none = SenderPolicy::new("licences@vendor.example", vec![]);
        assert!(none.allows("licences@vendor.example"));
        assert!(!none.allows("security@paypal.com"));
        assert!(none.check("security@paypal.com").is_err());
        assert_eq!(none.address_for(Some("security@paypal.com")), "licences@vendor.example");

        let some = SenderPolicy::new("licences@vendor.example", vec!["Tenant.Example".into()]);
        assert!(some.allows("sales@tenant.example"));
        assert!(some.allows("Sales@TENANT.example"));
        assert!(
            !some.allows("sales@evil.tenant.example"),
            "subdomains are other domains"
        );
        assert!(!some.allows("sales@tenant.example.evil.com"));
        assert!(!some.allows("paypal.com@tenant.example>"));
        assert_eq!(some.address_for(Some("sales@tenant.example")), "sales@tenant.example");
        assert_eq!(some.address_for(None), "licences@vendor.example");
        assert_eq!(
            some.check("security@paypal.com").unwrap_err().code,
            "sender_not_allowed"
        );
    }

    #[test]
    fn display_names_are_one_bounded_line() {
        assert_eq!(
            clean_display_name("Acme\r\nBcc: victim@example.com"),
            "Acme Bcc: victim@example.com"
        );
        assert_eq!(clean_display_name("  A\t\u{7}B  "), "A B");
        assert_eq!(clean_display_name(&"x".repeat(500)).len(), MAX_DISPLAY_NAME_CHARS);
        assert!(check_display_name("Acme\nBcc: x@y.z").is_err());
        assert!(check_display_name(&"x".repeat(65)).is_err());
        assert!(check_display_name(" ").is_err());
        assert!(check_display_name("Acme Licensing").is_ok());
    }

    #[test]
    fn domain_lists_parse() {
        assert_eq!(
            parse_domains(" a.example, B.example ,").unwrap(),
            vec!["a.example", "b.example"]
        );
        assert!(parse_domains("").unwrap().is_empty());
        assert!(parse_domains("user@a.example").is_err());
        assert!(parse_domains("localhost").is_err());
    }
}
