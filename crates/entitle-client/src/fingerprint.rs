//! A stable seat id for this device.

use std::path::Path;

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// A stable device fingerprint to use as the seat id: the platform's machine id (systemd's
/// `/etc/machine-id`, the Windows `MachineGuid`, the macOS platform UUID, the BSD host UUID)
/// hashed with the product id, so the raw machine id never leaves the device and two vendors
/// cannot correlate their seats.
///
/// In a container, and wherever no machine id can be read, a random id is created once in
/// `fallback_file` and reused: stable for as long as that file lives, so put it next to the
/// cache file in a directory (or volume) that survives updates. Containers skip the machine id
/// because every container of one image shares the id baked into the image.
pub fn device_fingerprint(product_id: &str, fallback_file: &Path) -> std::io::Result<String> {
    let machine_id = if in_container() { None } else { platform_machine_id() };
    fingerprint(product_id, machine_id, fallback_file)
}

fn fingerprint(product_id: &str, machine_id: Option<String>, fallback_file: &Path) -> std::io::Result<String> {
    let machine_id = match machine_id {
        Some(id) => id,
        None => installation_id(fallback_file)?,
    };
    Ok(hash(product_id, &machine_id))
}

fn platform_machine_id() -> Option<String> {
    machine_uid::get()
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// Docker, Podman and systemd-nspawn leave these marks.
fn in_container() -> bool {
    Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some_and(|v| !v.is_empty())
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

    #[test]
    fn the_machine_id_wins_over_the_file_and_never_leaves_raw() {
        let dir = std::env::temp_dir().join(format!("entitle-fp-m-{}", rand::random::<u32>()));
        let file = dir.join("installation-id");
        let from_machine = fingerprint("prd_a", Some("3d1219c7c4c5".into()), &file).unwrap();
        assert_eq!(from_machine, hash("prd_a", "3d1219c7c4c5"));
        assert!(!from_machine.contains("3d1219c7c4c5"));
        assert!(!file.exists(), "no fallback file when the machine id is known");
        let from_file = fingerprint("prd_a", None, &file).unwrap();
        assert_eq!(from_file, hash("prd_a", &installation_id(&file).unwrap()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_platform_machine_id_is_read_where_the_os_keeps_one() {
        // systemd and D-Bus hosts (this CI) have one; elsewhere the fallback covers it.
        let known = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|id| id.trim().to_owned())
            .find(|id| !id.is_empty());
        if let Some(expected) = known {
            assert_eq!(platform_machine_id().as_deref(), Some(expected.as_str()));
        }
    }
}
