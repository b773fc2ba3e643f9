//! A tenant's branding, kept in columns of its `tenants` row.

use sqlx::AnyConnection;

use super::rows::RowExt;
use super::{StoreError, StoreResult};
use crate::domain::branding::{AccentColour, BrandName, BrandingSettings, LogoUrl};

/// The tenant's name and branding settings, or `None` for an unknown tenant.
pub async fn get(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<Option<(String, BrandingSettings)>> {
    let row =
        sqlx::query("SELECT name, brand_display_name, brand_logo_url, brand_accent_colour FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let optional = |column: &str| -> StoreResult<Option<String>> { row.opt_text(column) };
    fn corrupt(column: &'static str) -> impl Fn(crate::domain::RuleViolation) -> StoreError {
        move |_| StoreError::Corrupt(format!("column {column}: not a valid value"))
    }
    let settings = BrandingSettings {
        display_name: optional("brand_display_name")?
            .map(BrandName::parse)
            .transpose()
            .map_err(corrupt("brand_display_name"))?,
        logo_url: optional("brand_logo_url")?
            .map(LogoUrl::parse)
            .transpose()
            .map_err(corrupt("brand_logo_url"))?,
        accent_colour: optional("brand_accent_colour")?
            .map(|hex| AccentColour::parse(&hex))
            .transpose()
            .map_err(corrupt("brand_accent_colour"))?,
    };
    Ok(Some((row.text("name")?, settings)))
}

/// Replaces the tenant's branding; `false` when there is no such tenant.
pub async fn put(conn: &mut AnyConnection, tenant_id: &str, settings: &BrandingSettings) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE tenants SET brand_display_name = $1, brand_logo_url = $2, brand_accent_colour = $3 WHERE id = $4",
    )
    .bind(settings.display_name.as_ref().map(|name| name.as_str().to_owned()))
    .bind(settings.logo_url.as_ref().map(|url| url.as_str().to_owned()))
    .bind(settings.accent_colour.map(|colour| colour.to_string()))
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
