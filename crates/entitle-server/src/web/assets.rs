//! Static assets (stylesheet, script) served with a content hash.
//! (Placeholder hrefs until the asset routes land.)

pub fn stylesheet_href() -> &'static str {
    "/static/portal.css"
}

pub fn script_href() -> &'static str {
    "/static/portal.js"
}
