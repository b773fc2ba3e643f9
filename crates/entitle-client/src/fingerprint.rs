//! A stable seat id for this device.

use std::path::Path;

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Where operating systems keep a per-installation machine id (systemd, D-Bus, FreeBSD).
const MACHINE_ID_FILES: &[&str] = &["/etc/machine-id", "/var/lib/dbus/machine-id", "/etc/hostid"];

/// A stable device fingerprint to use as the seat id: the machine id hashed with the product id,
/// so the raw machine id never leaves the device and two vendors cannot correlate their seats.
///
/// Where no machine id can be read (Windows, macOS, containers without one), a random id is
/// created once in `fallback_file` and reused: stable for as long as that file lives, so put it
/// next to the cache file in a directory that survives updates.
pub fn device_fingerprint(product_id: &str, fallback_file: &Path) -> std::io::Result<String> {
    let machine_id = MACHINE_ID_FILES
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|id| id.trim().to_owned())
        .find(|id| !id.is_empty());
    let machine_id = match machine_id {
        Some(id) => id,
        None => installation_id(fallback_file)?,
    };
    Ok(hash(product_id, &machine_id))
}

fn hash(product_id: &str, machine_id: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"entitle-seat\0");
    digest.update(product_id.as_bytes());
    digest.update([0]);
    digest.update(machine_id.as_bytes());
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn installation_id(path: &Path) -> std::io::Result<String> {
    if let Ok(id) = std::fs::read_to_string(path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    let id: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    crate::cache::write_atomically(path, id.as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_stable_and_depends_on_the_product() {
        let dir = std::env::temp_dir().join(format!("entitle-fp-{}", std::process::id()));
        let file = dir.join("installation-id");
        let a = device_fingerprint("prd_a", &file).unwrap();
        assert_eq!(a, device_fingerprint("prd_a", &file).unwrap());
        assert_ne!(a, device_fingerprint("prd_b", &file).unwrap());
        assert_eq!(a.len(), 64);
        assert_eq!(installation_id(&file).unwrap(), installation_id(&file).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
