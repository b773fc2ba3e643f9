//! Cookies, written and read by hand: there are two, both simple.

use axum::http::header::COOKIE;
use axum::http::HeaderMap;

/// The session cookie of one tenant's portal.
pub const SESSION: &str = "entitle_session";
/// The sign-in forms' CSRF token, before there is a session (double submit).
pub const PRE_SESSION: &str = "entitle_signin";

/// The value of cookie `name` in the request, if sent.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A `Set-Cookie` value: HttpOnly always, `Secure` when the portal is served over https.
pub fn set(name: &str, value: &str, path: &str, max_age_seconds: i64, secure: bool, same_site: &str) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age_seconds}; HttpOnly; SameSite={same_site}{secure}")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear(name: &str, path: &str, secure: bool) -> String {
    set(name, "", path, 0, secure, "Lax")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_the_named_cookie_and_writes_safe_attributes() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; entitle_session=abc; b=2"));
        assert_eq!(get(&headers, SESSION), Some("abc"));
        assert_eq!(get(&headers, "missing"), None);
        let cookie = set(SESSION, "tok", "/portal/ten_1", 60, true, "Lax");
        assert_eq!(
            cookie,
            "entitle_session=tok; Path=/portal/ten_1; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
