//! A tenant's branding for the pages its customers see: a display name, a logo and an accent
//! colour. Each part is parsed once, here, into a type that can only hold an acceptable value, so
//! templates and the brand stylesheet never re-check what they print.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use super::bounds::Rejected;
use super::RuleViolation;

/// A string schema stating what the constructor accepts, so the OpenAPI document tells the truth.
fn text_schema(min: usize, max: usize, pattern: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

/// A text newtype whose only constructor is `$check`. Deserializing goes through it too, and a
/// refusal keeps its stable code (through [`Rejected`]), so a bad colour in a request body is
/// answered `invalid_accent_colour`, not a generic `invalid_body`.
macro_rules! brand_text {
    ($(#[$doc:meta])* $name:ident, schema = ($min:expr, $max:expr, $pattern:expr), $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                text_schema($min, $max, $pattern)
            }
        }

        impl ToSchema for $name {}

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, RuleViolation> {
                let check: fn(String) -> Result<String, RuleViolation> = $check;
                check(value.into()).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Rejected;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Ok(Self::parse(value)?)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Longest display name, in characters: it sits in a header next to a logo, on a phone too.
pub const MAX_DISPLAY_NAME_CHARS: usize = 80;

/// Longest logo URL kept (CDN URLs with signatures run long; a page header need not carry more).
pub const MAX_LOGO_URL_CHARS: usize = 1024;

brand_text!(
    /// The name shown in the portal's header: one line of 1–80 characters after trimming.
    BrandName,
    schema = (1, 80, r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"),
    |value| {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(RuleViolation::new(
                "invalid_display_name",
                format!("a display name must have 1 to {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        // Control characters include line breaks: the name is one line in a header.
        if trimmed.chars().any(char::is_control) {
            return Err(RuleViolation::new(
                "invalid_display_name",
                "a display name is one line without control characters",
            ));
        }
        Ok(trimmed.to_owned())
    }
);

brand_text!(
    /// Where the portal loads the logo from: an `https://` URL (`http://` only for `localhost`,
    /// `127.0.0.1` and `[::1]`, for trying things out), at most 1024 characters of printable
    /// ASCII (percent-encode the rest), without user information in the host part.
    LogoUrl,
    schema = (
        9,
        1024,
        r"^(https://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|http://(localhost|127\.0\.0\.1|\[::1\]))(:[0-9]{1,5})?([/?#][!#-&(-;=?-\[\]_a-z~]*)?$"
    ),
    parse_logo_url
);

fn parse_logo_url(value: String) -> Result<String, RuleViolation> {
    let bad = |why: &str| RuleViolation::new("invalid_logo_url", format!("logo_url: {why}"));
    if value.len() > MAX_LOGO_URL_CHARS {
        return Err(bad("at most 1024 characters"));
    }
    // Printable ASCII without the characters that end or break out of an HTML attribute or a
    // CSS string, so the URL is inert wherever a template puts it (escaping stays the first line).
    if let Some(c) = value
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '"' | '\'' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'))
    {
        return Err(bad(&format!(
            "{c:?} is not allowed: use printable ASCII and percent-encode the rest"
        )));
    }
    let (local_only, rest) = if let Some(rest) = value.strip_prefix("https://") {
        (false, rest)
    } else if let Some(rest) = value.strip_prefix("http://") {
        (true, rest)
    } else {
        return Err(bad("use an https:// URL"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // `https://cdn.example@evil.example/` names evil.example: refuse user information outright.
    if authority.contains('@') {
        return Err(bad("user information (`user@`) is not allowed"));
    }
    // An IPv6 literal has colons of its own: the port follows its closing bracket.
    let (host, port) = match authority.strip_prefix('[').and_then(|_| authority.find(']')) {
        Some(close) => {
            let (host, after) = authority.split_at(close + 1);
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("the host is malformed")),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if let Some(port) = port {
        let valid = (1..=5).contains(&port.len())
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
    }
    if local_only {
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(bad("http:// is allowed for localhost only: use https://"));
        }
    } else {
        let valid = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(bad("the host must be a DNS name"));
        }
    }
    Ok(value)
}

/// An sRGB colour written `#rrggbb` (accepted in either case, kept in lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccentColour([u8; 3]);

impl AccentColour {
    /// The accent when a tenant sets none (a blue that carries white text at AA).
    pub const DEFAULT: AccentColour = AccentColour([0x25, 0x63, 0xeb]);

    pub fn parse(value: &str) -> Result<AccentColour, RuleViolation> {
        let bad = || {
            RuleViolation::new(
                "invalid_accent_colour",
                format!("{value:?} is not a colour: write it as #RRGGBB"),
            )
        };
        let hex = value.strip_prefix('#').ok_or_else(bad)?;
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        Ok(AccentColour([channel(0)?, channel(2)?, channel(4)?]))
    }

    pub const fn rgb(self) -> [u8; 3] {
        self.0
    }

    /// WCAG 2 relative luminance.
    fn luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }

    /// WCAG 2 contrast ratio, 1 to 21.
    pub fn contrast(self, other: AccentColour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// This colour moved toward `target` by `share` (0 to 1).
    fn mix(self, target: AccentColour, share: f64) -> AccentColour {
        let channel = |from: u8, to: u8| {
            let value = f64::from(from) + (f64::from(to) - f64::from(from)) * share;
            // In 0..=255 by construction; the clamp keeps the cast exact.
            value.round().clamp(0.0, 255.0) as u8
        };
        let ([r, g, b], [tr, tg, tb]) = (self.0, target.0);
        AccentColour([channel(r, tr), channel(g, tg), channel(b, tb)])
    }

    /// The closest colour to this one (moving toward `target`, black or white) that reaches
    /// `ratio` against every one of `backgrounds`.
    fn readable_on(self, backgrounds: &[AccentColour], ratio: f64, target: AccentColour) -> AccentColour {
        (0..=40)
            .map(|step| self.mix(target, f64::from(step) / 40.0))
            .find(|candidate| backgrounds.iter().all(|bg| candidate.contrast(*bg) >= ratio))
            .unwrap_or(target)
    }

    /// Black-ish or white text on this colour, whichever contrasts more.
    fn ink(self) -> AccentColour {
        if WHITE.contrast(self) >= INK_DARK.contrast(self) {
            WHITE
        } else {
            INK_DARK
        }
    }
}

impl fmt::Display for AccentColour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl TryFrom<String> for AccentColour {
    type Error = Rejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ok(AccentColour::parse(&value)?)
    }
}

impl From<AccentColour> for String {
    fn from(value: AccentColour) -> String {
        value.to_string()
    }
}

impl utoipa::PartialSchema for AccentColour {
    fn schema() -> RefOr<Schema> {
        text_schema(7, 7, "^#[0-9A-Fa-f]{6}$")
    }
}

impl ToSchema for AccentColour {}

const WHITE: AccentColour = AccentColour([0xff, 0xff, 0xff]);
const BLACK: AccentColour = AccentColour([0, 0, 0]);
/// The text colour of the light theme, also used on light accents.
const INK_DARK: AccentColour = AccentColour([0x11, 0x18, 0x27]);

/// The backgrounds of `web/static/portal.css` (`--bg`, `--surface`, and in the light theme the
/// darker `--surface-sunken` of table headers), light and dark: accents are checked against all
/// of them. A unit test there keeps the two in step.
pub const LIGHT_BACKGROUNDS: [AccentColour; 3] = [
    AccentColour([0xf6, 0xf7, 0xf9]),
    WHITE,
    AccentColour([0xf0, 0xf2, 0xf5]),
];
pub const DARK_BACKGROUNDS: [AccentColour; 2] = [AccentColour([0x0f, 0x12, 0x16]), AccentColour([0x18, 0x1c, 0x22])];

/// The colours one theme derives from an accent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccentShades {
    /// Fills: primary buttons, meters, active tabs.
    pub fill: AccentColour,
    /// Text on `fill`.
    pub ink: AccentColour,
    /// Links and accented text on the page (AA, 4.5:1, on every background).
    pub text: AccentColour,
}

/// The accent for the light and the dark theme. The light fill is the tenant's colour exactly (it
/// is their brand); text drawn in the accent is darkened or lightened as far as AA needs, and in
/// the dark theme fills are lightened until they stand out (3:1) from the dark background.
pub fn shades(accent: AccentColour) -> (AccentShades, AccentShades) {
    let light = AccentShades {
        fill: accent,
        ink: accent.ink(),
        text: accent.readable_on(&LIGHT_BACKGROUNDS, 4.5, BLACK),
    };
    let dark_fill = accent.readable_on(&DARK_BACKGROUNDS, 3.0, WHITE);
    let dark = AccentShades {
        fill: dark_fill,
        ink: dark_fill.ink(),
        text: accent.readable_on(&DARK_BACKGROUNDS, 4.5, WHITE),
    };
    (light, dark)
}

/// What a tenant has set; each part may be left out (`null`), and then the portal uses the
/// tenant's name and the default accent, and shows no logo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingSettings {
    /// The name in the portal's header (default: the tenant's name). One line, at most 80 characters.
    pub display_name: Option<BrandName>,
    /// An `https://` image URL (`http://` only for localhost).
    pub logo_url: Option<LogoUrl>,
    /// `#RRGGBB`, for buttons, links and highlights (default `#2563eb`).
    pub accent_colour: Option<AccentColour>,
}

/// Branding as the portal shows it: every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Branding {
    pub display_name: String,
    pub logo_url: Option<LogoUrl>,
    pub accent_colour: AccentColour,
}

impl Branding {
    pub fn resolve(tenant_name: &str, settings: BrandingSettings) -> Branding {
        Branding {
            display_name: settings
                .display_name
                .map_or_else(|| tenant_name.to_owned(), String::from),
            logo_url: settings.logo_url,
            accent_colour: settings.accent_colour.unwrap_or(AccentColour::DEFAULT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_one_short_line() {
        assert_eq!(
            BrandName::parse("  Acme Licensing ").unwrap().as_str(),
            "Acme Licensing"
        );
        assert!(BrandName::parse("x".repeat(80)).is_ok());
        assert!(BrandName::parse("é".repeat(80)).is_ok(), "characters, not bytes");
        for bad in ["", "   ", "Acme\nEvil", "Acme\rX", "a\u{0}b", &"x".repeat(81)] {
            assert_eq!(
                BrandName::parse(bad).unwrap_err().code,
                "invalid_display_name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn logo_urls_are_https_or_local_http() {
        for good in [
            "https://cdn.example.com/logo.png",
            "https://cdn.example.com",
            "https://cdn.example.com:8443/a/b.svg?v=2&x=%20y#top",
            "http://localhost/logo.png",
            "http://localhost:8080/logo.png",
            "http://127.0.0.1:3000/l.png",
            "http://[::1]:3000/l.png",
            "https://cdn.example.com/path/with@sign.png",
        ] {
            assert!(LogoUrl::parse(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "cdn.example.com/logo.png",
            "http://example.com/logo.png",
            "http://localhost.evil.example/logo.png",
            "http://localhost@evil.example/logo.png",
            "https://user:pw@cdn.example.com/logo.png",
            "HTTPS://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "//cdn.example.com/logo.png",
            "https:///logo.png",
            "https://cdn..example.com/logo.png",
            "https://cdn.example.com:0/logo.png",
            "https://cdn.example.com:99999/logo.png",
            "https://cdn.example.com:x/logo.png",
            "https://cdn.example.com/a b.png",
            "https://cdn.example.com/\"onerror=\"x",
            "https://cdn.example.com/'x",
            "https://cdn.example.com/<script>",
            "https://cdn.example.com/é.png",
        ] {
            assert_eq!(LogoUrl::parse(bad).unwrap_err().code, "invalid_logo_url", "{bad:?}");
        }
        let long = format!("https://cdn.example.com/{}", "a".repeat(1001));
        assert!(LogoUrl::parse(long).is_err());
        let fits = format!("https://cdn.example.com/{}", "a".repeat(1024 - 24));
        assert_eq!(fits.len(), 1024);
        assert!(LogoUrl::parse(fits).is_ok());
    }

    #[test]
    fn accent_colours_are_exactly_six_hex_digits() {
        assert_eq!(AccentColour::parse("#A1b2C3").unwrap().to_string(), "#a1b2c3");
        assert_eq!(AccentColour::parse("#000000").unwrap().rgb(), [0, 0, 0]);
        for bad in [
            "",
            "red",
            "#fff",
            "#12345",
            "#1234567",
            "123456",
            "#12345g",
            "#+12345",
            " #123456",
            "#１２３４５６",
        ] {
            assert_eq!(
                AccentColour::parse(bad).unwrap_err().code,
                "invalid_accent_colour",
                "{bad:?}"
            );
        }
        let json: AccentColour = serde_json::from_str("\"#FF0000\"").unwrap();
        assert_eq!(serde_json::to_string(&json).unwrap(), "\"#ff0000\"");
    }

    #[test]
    fn contrast_matches_wcag() {
        assert!((WHITE.contrast(BLACK) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
        // #767676 on white is the well-known 4.54:1.
        let grey = AccentColour::parse("#767676").unwrap();
        assert!((grey.contrast(WHITE) - 4.54).abs() < 0.01);
    }

    #[test]
    fn every_accent_yields_readable_shades() {
        for hex in [
            "#2563eb", "#ffff00", "#ffffff", "#000000", "#111827", "#ff5a5f", "#00ff00", "#0f1216", "#777777",
        ] {
            let accent = AccentColour::parse(hex).unwrap();
            let (light, dark) = shades(accent);
            assert_eq!(light.fill, accent, "the brand colour itself in the light theme");
            for (theme, backgrounds) in [(light, &LIGHT_BACKGROUNDS[..]), (dark, &DARK_BACKGROUNDS[..])] {
                for &bg in backgrounds {
                    assert!(theme.text.contrast(bg) >= 4.5, "{hex}: text {} on {bg}", theme.text);
                }
                // Large, bold button labels: AA for large text is 3:1; black or white reaches 4.5 on most.
                assert!(theme.ink.contrast(theme.fill) >= 3.0, "{hex}: ink on fill");
            }
            for bg in DARK_BACKGROUNDS {
                assert!(dark.fill.contrast(bg) >= 3.0, "{hex}: dark fill {} on {bg}", dark.fill);
            }
        }
        // A colour that is readable already is kept.
        let (light, _) = shades(AccentColour::DEFAULT);
        assert_eq!(light.text, AccentColour::DEFAULT);
        assert_eq!(light.ink, WHITE);
    }

    #[test]
    fn branding_falls_back_to_the_tenant() {
        let plain = Branding::resolve("Acme", BrandingSettings::default());
        assert_eq!(plain.display_name, "Acme");
        assert_eq!(plain.accent_colour, AccentColour::DEFAULT);
        assert_eq!(plain.logo_url, None);
        let set = Branding::resolve(
            "Acme",
            BrandingSettings {
                display_name: Some(BrandName::parse("Acme Portal").unwrap()),
                logo_url: None,
                accent_colour: Some(AccentColour::parse("#ff0000").unwrap()),
            },
        );
        assert_eq!(set.display_name, "Acme Portal");
        assert_eq!(set.accent_colour.to_string(), "#ff0000");
    }
}
