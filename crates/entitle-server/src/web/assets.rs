//! Static assets (stylesheet, script) served with a content hash.
