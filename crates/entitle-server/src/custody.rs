//! Custody of secrets at rest: the master key (key-encryption key) and one small sealing API.
//!
//! Secrets the server must read back (tenants' Ed25519 signing keys) are stored sealed with
//! ChaCha20-Poly1305 under the master key, so whoever reads a database backup without the
//! master key cannot sign leases. The master key comes from `ENTITLE_MASTER_KEY` (base64 of 32
//! bytes) or `--master-key-file`; without either it is generated into the data directory with
//! owner-only permissions, and the server warns that it must be backed up apart from the database.
//!
//! The AEAD is `ring`'s, already in the binary through rustls: a maintained, audited
//! implementation and no new dependency. Each sealed value is bound to its context (e.g. the key
//! id), so a sealed value copied into another row does not open.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

/// Sealed values start with this, so plaintext left by an older version is recognised.
const PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// The value itself (base64 of 32 bytes), from `ENTITLE_MASTER_KEY`.
    Value(secrecy::SecretString),
    /// A file holding it; with `generate`, created when absent.
    File { path: PathBuf, generate: bool },
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Value(_) => f.write_str("MasterKeySource::Value(***)"),
            MasterKeySource::File { path, generate } => f
                .debug_struct("MasterKeySource::File")
                .field("path", path)
                .field("generate", generate)
                .finish(),
        }
    }
}

/// Seals and opens secrets under the master key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("not a sealed value")]
    NotSealed,
    #[error("the sealed value does not open with this master key (or was altered)")]
    WrongKey,
}

impl Sealer {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Sealer> {
        anyhow::ensure!(bytes.len() == KEY_LEN, "a master key is {KEY_LEN} bytes");
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| anyhow::anyhow!("unusable master key"))?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// Loads (or, for a generated file that is absent, creates) the master key.
    pub fn load(source: &MasterKeySource) -> anyhow::Result<Sealer> {
        let encoded = match source {
            MasterKeySource::Value(value) => secrecy::ExposeSecret::expose_secret(value).trim().to_owned(),
            MasterKeySource::File { path, generate } => {
                if *generate && !path.exists() {
                    generate_file(path)?;
                }
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the master key file {}", path.display()))?
                    .trim()
                    .to_owned()
            }
        };
        let bytes = STANDARD
            .decode(encoded)
            .context("the master key is not base64 (of 32 random bytes)")?;
        Self::from_bytes(&bytes)
    }

    /// Seals `secret` for `context` (what it is and whose: it must be given again to open it).
    pub fn seal(&self, secret: &[u8], context: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The secret `sealed` holds, if it was sealed for `context` under this key.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let mut bytes = STANDARD.decode(body).map_err(|_| SealError::NotSealed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::NotSealed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let opened = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| SealError::WrongKey)?;
        Ok(opened.to_vec())
    }
}

/// Whether a stored value is sealed (rather than plaintext from an older version).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

fn generate_file(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| anyhow::anyhow!("no randomness for a master key"))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating the master key file {}", path.display()))?;
    writeln!(file, "{}", STANDARD.encode(key)).context("writing the master key")?;
    file.sync_all().context("writing the master key")?;
    tracing::warn!(
        path = %path.display(),
        "generated a new master key: the signing keys in the database are sealed with it. Back it up \
         apart from the database (a backup of one without the other is useless to a thief, and to you)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let sealer = Sealer::from_bytes(&[7; 32]).unwrap();
        let sealed = sealer.seal(b"a signing key seed", "key_sig_1").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("signing"));
        assert_eq!(sealer.open(&sealed, "key_sig_1").unwrap(), b"a signing key seed");
        assert!(
            matches!(sealer.open(&sealed, "key_sig_2"), Err(SealError::WrongKey)),
            "bound to its context"
        );
        let other = Sealer::from_bytes(&[8; 32]).unwrap();
        assert!(matches!(other.open(&sealed, "key_sig_1"), Err(SealError::WrongKey)));
        assert_ne!(
            sealer.seal(b"same", "c").unwrap(),
            sealer.seal(b"same", "c").unwrap(),
            "a fresh nonce each time"
        );
        assert!(matches!(
            sealer.open("bm90IHNlYWxlZA==", "c"),
            Err(SealError::NotSealed)
        ));
    }

    #[test]
    fn a_generated_key_file_is_owner_only_and_loads_again() {
        let dir = std::env::temp_dir().join(format!("entitle-custody-{}", crate::domain::ids::random_token(8)));
        let path = dir.join("master.key");
        let source = MasterKeySource::File {
            path: path.clone(),
            generate: true,
        };
        let first = Sealer::load(&source).unwrap();
        let sealed = first.seal(b"secret", "ctx").unwrap();
        let again = Sealer::load(&source).unwrap();
        assert_eq!(again.open(&sealed, "ctx").unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let missing = MasterKeySource::File {
            path: dir.join("absent.key"),
            generate: false,
        };
        assert!(Sealer::load(&missing).is_err(), "a named file is never invented");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
