use secrecy::SecretString;
use serde_json::json;

use super::{api_keys, record, Actor, Ctx, ServiceResult};
use crate::domain::{ids, Name, Role};
use crate::store::{self, tenants::Tenant, Store};

pub struct NewTenant {
    pub tenant: Tenant,
    pub admin_key: SecretString,
}

/// A new tenant with its first admin API key (shown once).
pub async fn create(store: &Store, name: &Name) -> ServiceResult<NewTenant> {
    let now = super::now();
    let tenant = Tenant {
        id: ids::new_id("ten"),
        name: name.to_string(),
        created_at: now,
    };
    let ctx = Ctx {
        tenant_id: tenant.id.clone(),
        actor: Actor::system(),
        now,
    };
    let mut tx = store.begin().await?;
    store::tenants::insert(&mut tx, &tenant).await?;
    record(
        &mut tx,
        &ctx,
        "tenant.created",
        "tenant",
        &tenant.id,
        json!({ "name": tenant.name }),
    )
    .await?;
    let key_name = Name::parse("First admin key")?;
    let (_, admin_key) = api_keys::insert(&mut tx, &ctx, key_name, Role::Admin).await?;
    super::signing::create_key(&mut tx, store.sealer(), &tenant.id, now).await?;
    tx.commit().await?;
    Ok(NewTenant { tenant, admin_key })
}
