use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{found, record, snapshot, Ctx, Page, Paging, ServiceResult};
use crate::domain::keys::hash_secret;
use crate::domain::{ids, ApiKeySecret, Name, Role};
use crate::store::api_keys::{ApiKey, KeyOwner};
use crate::store::{self, Store};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: Name,
    pub role: Role,
}

/// The created key with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// Use as `Authorization: Bearer <secret>`. Store it now: it cannot be shown again.
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose")]
    pub secret: SecretString,
}

fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}

pub(crate) async fn insert(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    name: Name,
    role: Role,
) -> ServiceResult<(ApiKey, SecretString)> {
    let generated = ApiKeySecret::generate();
    let key = ApiKey {
        id: ids::new_id("key"),
        name: name.to_string(),
        role,
        display_prefix: generated.display_prefix.clone(),
        created_at: ctx.now,
        revoked_at: None,
    };
    store::api_keys::insert(conn, &ctx.tenant_id, &key, &generated.hash).await?;
    record(conn, ctx, "api_key.created", "api_key", &key.id, snapshot(&key)).await?;
    Ok((key, generated.secret))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create(store: &Store, ctx: &Ctx, input: NewApiKey) -> ServiceResult<CreatedApiKey> {
    let mut tx = store.begin().await?;
    let (key, secret) = insert(&mut tx, ctx, input.name, input.role).await?;
    tx.commit().await?;
    Ok(CreatedApiKey { key, secret })
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list(store: &Store, ctx: &Ctx, paging: &Paging) -> ServiceResult<Page<ApiKey>> {
    let mut conn = store.read().await?;
    let keys = store::api_keys::list(&mut conn, &ctx.tenant_id, paging.after(), paging.fetch_limit()).await?;
    Ok(paging.page(keys, |k| &k.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, api_key_id = %id))]
pub async fn revoke(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<ApiKey> {
    let mut tx = store.begin().await?;
    found(store::api_keys::get(&mut tx, &ctx.tenant_id, id).await?, "api key")?;
    if store::api_keys::revoke(&mut tx, &ctx.tenant_id, id, ctx.now).await? {
        record(&mut tx, ctx, "api_key.revoked", "api_key", id, serde_json::json!({})).await?;
    }
    let key = found(store::api_keys::get(&mut tx, &ctx.tenant_id, id).await?, "api key")?;
    tx.commit().await?;
    Ok(key)
}

/// The owner of a bearer secret, if it is a live key.
pub async fn authenticate(store: &Store, secret: &str) -> ServiceResult<Option<KeyOwner>> {
    let mut conn = store.read().await?;
    Ok(store::api_keys::find_owner(&mut conn, &hash_secret(secret)).await?)
}
