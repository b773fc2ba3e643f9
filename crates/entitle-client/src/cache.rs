//! The local cache file: the last valid lease token, the activation's id and secret, and the
//! latest time seen (to detect a clock set back). The application starts from it offline.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const VERSION: u32 = 1;

/// The file's contents. Everything in it is re-verified on load: the token against the pinned
/// keys, the identity against the configuration; a forged file gains nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CacheFile {
    pub version: u32,
    pub tenant: String,
    pub product: String,
    pub seat_id: String,
    #[serde(default)]
    pub activation: Option<StoredActivation>,
    /// The latest clock reading seen (Unix seconds).
    #[serde(default)]
    pub last_seen: i64,
    /// The nonce of the last offline activation request written: the licence file must answer it.
    #[serde(default)]
    pub pending_offline_nonce: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredActivation {
    pub id: String,
    pub secret: String,
    pub lease_token: String,
    /// Activated with a licence file (air-gapped).
    #[serde(default)]
    pub offline: bool,
    /// A denial that suspended the lease (disabled or expired entitlement), as its wire code.
    #[serde(default)]
    pub suspended: Option<String>,
}

impl CacheFile {
    pub fn empty(tenant: &str, product: &str, seat_id: &str) -> CacheFile {
        CacheFile {
            version: VERSION,
            tenant: tenant.to_owned(),
            product: product.to_owned(),
            seat_id: seat_id.to_owned(),
            ..CacheFile::default()
        }
    }
}

fn cache_error(path: &Path, source: std::io::Error) -> Error {
    Error::Cache {
        path: path.to_owned(),
        source,
    }
}

/// The cache, or `None` when there is none. An unreadable or foreign-version file counts as
/// none rather than an error: the application then simply needs to activate again.
pub(crate) fn load(path: &Path) -> Result<Option<CacheFile>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cache_error(path, e)),
    };
    Ok(serde_json::from_slice::<CacheFile>(&bytes)
        .ok()
        .filter(|c| c.version == VERSION))
}

pub(crate) fn save(path: &Path, cache: &CacheFile) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(cache).map_err(|e| Error::Malformed(e.to_string()))?;
    write_atomically(path, &bytes).map_err(|e| cache_error(path, e))
}

/// Writes a temporary file next to `path`, flushes it to disk and renames it over `path`, so a
/// crash or a full disk leaves the old file or the new one, never half of one. The file holds
/// the activation secret, so it is readable by its owner only (on Unix).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let temp = path.with_file_name(name);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = std::env::temp_dir().join(format!("entitle-cache-{}", rand::random::<u32>()));
        let path = dir.join("sub").join("licence.json");
        assert!(load(&path).unwrap().is_none());
        let mut cache = CacheFile::empty("t", "p", "s");
        cache.last_seen = 42;
        save(&path, &cache).unwrap();
        cache.last_seen = 43;
        save(&path, &cache).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().last_seen, 43);
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(load(&path).unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
