//! Per-tenant Ed25519 signing keys, created on first use and cached in memory.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use entitle_protocol::{Jwks, PublicKey, Signer};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{ServiceError, ServiceResult};
use crate::custody::Sealer;
use crate::domain::ids;
use crate::store::{self, Store, StoreError};

/// A tenant's keys: the newest signs; all (retired ones too) verify.
pub struct TenantKeys {
    pub signer: Signer,
    pub public: Vec<PublicKey>,
    /// The JWKS document, serialised once.
    pub jwks: Vec<u8>,
}

#[derive(Default)]
pub struct KeyRing {
    tenants: RwLock<HashMap<String, Arc<TenantKeys>>>,
}

/// The key's seed: sealed under the master key, or in clear when the store has no master key.
fn signer_from(stored: &store::licensing::StoredSigningKey, sealer: Option<&Sealer>) -> ServiceResult<Signer> {
    let bytes = match sealer {
        Some(sealer) if crate::custody::is_sealed(&stored.seed) => sealer.open(&stored.seed, &stored.kid).ok(),
        _ => STANDARD.decode(&stored.seed).ok(),
    };
    let seed: [u8; 32] = bytes
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ServiceError::Store(StoreError::Corrupt(format!("signing key {}", stored.kid))))?;
    Ok(Signer::from_seed(stored.kid.clone(), &seed))
}

/// Creates a new signing key for the tenant in the caller's transaction, sealed when the store
/// has a master key.
pub(crate) async fn create_key(
    conn: &mut sqlx::AnyConnection,
    sealer: Option<&Sealer>,
    tenant_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ServiceResult<()> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let kid = ids::new_id("key_sig");
    let stored = match sealer {
        Some(sealer) => sealer.seal(&seed, &kid).map_err(StoreError::Other)?,
        None => STANDARD.encode(seed),
    };
    store::licensing::insert_signing_key(conn, tenant_id, &kid, &stored, now).await?;
    Ok(())
}

impl KeyRing {
    /// The tenant's keys, or `None` if there is no such tenant.
    pub async fn get(&self, store: &Store, tenant_id: &str) -> ServiceResult<Option<Arc<TenantKeys>>> {
        if let Some(keys) = self.read_cached(tenant_id) {
            return Ok(Some(keys));
        }
        let mut conn = store.read().await?;
        let mut stored = store::licensing::signing_keys(&mut conn, tenant_id).await?;
        if stored.is_empty() {
            if store::tenants::get(&mut conn, tenant_id).await?.is_none() {
                return Ok(None);
            }
            drop(conn);
            let mut tx = store.begin().await?;
            create_key(&mut tx, store.sealer(), tenant_id, super::now()).await?;
            tx.commit().await?;
            stored = store::licensing::signing_keys(&mut *store.read().await?, tenant_id).await?;
        }
        let active = stored.iter().find(|k| !k.retired).unwrap_or(&stored[0]);
        let signer = signer_from(active, store.sealer())?;
        let public = stored
            .iter()
            .map(|key| signer_from(key, store.sealer()))
            .map(|s| s.map(|s| s.public_key()))
            .collect::<ServiceResult<Vec<_>>>()?;
        let jwks = serde_json::to_vec(&Jwks::from_keys(public.iter()))
            .map_err(|e| ServiceError::Store(StoreError::Other(e.into())))?;
        let keys = Arc::new(TenantKeys { signer, public, jwks });
        self.tenants
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(tenant_id.to_owned(), keys.clone());
        Ok(Some(keys))
    }

    fn read_cached(&self, tenant_id: &str) -> Option<Arc<TenantKeys>> {
        self.tenants
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(tenant_id)
            .cloned()
    }
}
