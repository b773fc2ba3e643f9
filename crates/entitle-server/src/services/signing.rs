//! Per-tenant Ed25519 signing keys, created on first use and cached in memory.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use entitle_protocol::{Jwks, PublicKey, Signer};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{ServiceError, ServiceResult};
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

fn signer_from(stored: &store::licensing::StoredSigningKey) -> ServiceResult<Signer> {
    let seed: [u8; 32] = STANDARD
        .decode(&stored.seed)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ServiceError::Store(StoreError::Corrupt(format!("signing key {}", stored.kid))))?;
    Ok(Signer::from_seed(stored.kid.clone(), &seed))
}

/// Creates a new signing key for the tenant in the caller's transaction.
pub(crate) async fn create_key(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ServiceResult<()> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    store::licensing::insert_signing_key(conn, tenant_id, &ids::new_id("key_sig"), &STANDARD.encode(seed), now).await?;
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
            create_key(&mut tx, tenant_id, super::now()).await?;
            tx.commit().await?;
            stored = store::licensing::signing_keys(&mut *store.read().await?, tenant_id).await?;
        }
        let active = stored.iter().find(|k| !k.retired).unwrap_or(&stored[0]);
        let signer = signer_from(active)?;
        let public = stored
            .iter()
            .map(signer_from)
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
