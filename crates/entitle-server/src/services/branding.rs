//! A tenant's branding: set through the management API, shown by the portal.

use super::{changes, found, record, Ctx, ServiceResult};
use crate::domain::branding::{AccentColour, Branding, BrandingSettings};
use crate::store::{self, Store};

/// Tenant ids are short; a longer path segment cannot name one, so it costs no query.
const MAX_TENANT_ID_LEN: usize = 64;

/// The branding the portal shows for `tenant_id`, defaults filled in (the display name falls
/// back to the tenant's name).
pub async fn get(store: &Store, tenant_id: &str) -> ServiceResult<Branding> {
    let mut conn = store.read().await?;
    let (name, settings) = found(store::branding::get(&mut conn, tenant_id).await?, "tenant")?;
    Ok(Branding::resolve(&name, settings))
}

/// The accent for `tenant_id`'s pages: the default for a tenant that sets none, and for an
/// unknown one (a stylesheet URL reveals nothing about which tenants exist).
pub async fn accent(store: &Store, tenant_id: &str) -> ServiceResult<AccentColour> {
    if tenant_id.len() > MAX_TENANT_ID_LEN {
        return Ok(AccentColour::DEFAULT);
    }
    let mut conn = store.read().await?;
    let settings = store::branding::get(&mut conn, tenant_id).await?;
    Ok(settings
        .and_then(|(_, settings)| settings.accent_colour)
        .unwrap_or(AccentColour::DEFAULT))
}

/// What the caller's tenant has set (unset parts are `None`).
pub async fn settings(store: &Store, ctx: &Ctx) -> ServiceResult<BrandingSettings> {
    let mut conn = store.read().await?;
    let (_, settings) = found(store::branding::get(&mut conn, &ctx.tenant_id).await?, "tenant")?;
    Ok(settings)
}

/// Replaces the caller's tenant's branding (a part left out goes back to its default).
pub async fn put(store: &Store, ctx: &Ctx, settings: BrandingSettings) -> ServiceResult<BrandingSettings> {
    let mut tx = store.begin().await?;
    let (_, before) = found(store::branding::get(&mut tx, &ctx.tenant_id).await?, "tenant")?;
    if !store::branding::put(&mut tx, &ctx.tenant_id, &settings).await? {
        return Err(super::ServiceError::NotFound("tenant"));
    }
    record(
        &mut tx,
        ctx,
        "branding.updated",
        "tenant",
        &ctx.tenant_id,
        changes(&before, &settings),
    )
    .await?;
    tx.commit().await?;
    Ok(settings)
}
