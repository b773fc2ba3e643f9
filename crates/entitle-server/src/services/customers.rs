//! Customers (buying organisations) and their end users.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{changes, found, nullable, on_duplicate, record, snapshot, Ctx, Page, Paging, ServiceResult};
use crate::domain::{check_external_ref, ids, passwords, Customer, Email, EndUser, EndUserRole, Name};
use crate::store::customers::{self as db, CustomerFilter};
use crate::store::{Store, StoreError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub name: Name,
    pub email: Option<Email>,
    /// Your own reference (CRM id, storefront customer id); unique per tenant.
    pub external_ref: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    pub name: Option<Name>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<Email>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub external_ref: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    pub email: Option<String>,
    pub external_ref: Option<String>,
    /// Customers whose name starts with this, ignoring case (ASCII letters only on SQLite).
    pub q: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_customer(store: &Store, ctx: &Ctx, input: NewCustomer) -> ServiceResult<Customer> {
    if let Some(reference) = &input.external_ref {
        check_external_ref(reference)?;
    }
    let customer = Customer {
        id: ids::new_id("cus"),
        name: input.name,
        email: input.email,
        external_ref: input.external_ref,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let mut tx = store.begin().await?;
    db::insert_customer(&mut tx, &ctx.tenant_id, &customer)
        .await
        .map_err(on_duplicate(
            "external_ref_taken",
            "another customer already has this external_ref",
        ))?;
    record(
        &mut tx,
        ctx,
        "customer.created",
        "customer",
        &customer.id,
        snapshot(&customer),
    )
    .await?;
    tx.commit().await?;
    Ok(customer)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, customer_id = %id))]
pub async fn get_customer(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Customer> {
    found(
        db::get_customer(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "customer",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_customers(store: &Store, ctx: &Ctx, query: &CustomerQuery) -> ServiceResult<Page<Customer>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    // An empty value means no filter, as before filters became separate conditions.
    let given = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let email = given(&query.email).map(|e| e.to_lowercase());
    let external_ref = query.external_ref.as_deref().filter(|r| !r.is_empty());
    let name_prefix = given(&query.q);
    let filter = CustomerFilter {
        email: email.as_deref(),
        external_ref,
        name_prefix: name_prefix.as_deref(),
        after: paging.after(),
        limit: paging.fetch_limit(),
    };
    let customers = db::list_customers(&mut *store.read().await?, store.backend(), &ctx.tenant_id, &filter).await?;
    Ok(paging.page(customers, |c| &c.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, customer_id = %id))]
pub async fn update_customer(store: &Store, ctx: &Ctx, id: &str, patch: CustomerPatch) -> ServiceResult<Customer> {
    if let Some(Some(reference)) = &patch.external_ref {
        check_external_ref(reference)?;
    }
    let mut tx = store.begin().await?;
    let before = found(db::get_customer(&mut tx, &ctx.tenant_id, id).await?, "customer")?;
    let mut customer = before.clone();
    customer.name = patch.name.unwrap_or(customer.name);
    customer.email = patch.email.unwrap_or(customer.email);
    customer.external_ref = patch.external_ref.unwrap_or(customer.external_ref);
    customer.updated_at = ctx.now;
    db::update_customer(&mut tx, &ctx.tenant_id, &customer)
        .await
        .map_err(on_duplicate(
            "external_ref_taken",
            "another customer already has this external_ref",
        ))?;
    record(
        &mut tx,
        ctx,
        "customer.updated",
        "customer",
        id,
        changes(&before, &customer),
    )
    .await?;
    tx.commit().await?;
    Ok(customer)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndUser {
    pub customer_id: String,
    /// Unique per tenant: one person, one account.
    pub email: Email,
    pub name: Option<Name>,
    /// Default: `user`.
    pub role: Option<EndUserRole>,
    /// For account-based licensing (activation with email and password): 10 to 256 characters.
    /// Stored as an argon2id hash, never shown.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndUserPatch {
    pub email: Option<Email>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<Name>>,
    pub role: Option<EndUserRole>,
    /// Sets a new password (10 to 256 characters).
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndUserQuery {
    pub customer_id: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

const EMAIL_TAKEN: (&str, &str) = ("email_taken", "another end user already has this email");

/// Hashes a password off the async runtime: argon2id takes tens of milliseconds on purpose.
async fn password_hash(password: Option<String>) -> ServiceResult<Option<String>> {
    let Some(password) = password else {
        return Ok(None);
    };
    passwords::check_strength(&password)?;
    let hashed = super::hashing::run(move || passwords::hash(&password))
        .await?
        .map_err(|e| StoreError::Other(anyhow::anyhow!("password hashing: {e}")))?;
    Ok(Some(hashed))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_end_user(store: &Store, ctx: &Ctx, input: NewEndUser) -> ServiceResult<EndUser> {
    let hash = password_hash(input.password).await?;
    let mut tx = store.begin().await?;
    found(
        db::get_customer(&mut tx, &ctx.tenant_id, &input.customer_id).await?,
        "customer",
    )?;
    let user = EndUser {
        id: ids::new_id("usr"),
        customer_id: input.customer_id,
        email: input.email,
        name: input.name,
        role: input.role.unwrap_or(EndUserRole::User),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert_end_user(&mut tx, &ctx.tenant_id, &user)
        .await
        .map_err(on_duplicate(EMAIL_TAKEN.0, EMAIL_TAKEN.1))?;
    if let Some(hash) = &hash {
        db::set_password(&mut tx, &ctx.tenant_id, &user.id, hash).await?;
    }
    record(&mut tx, ctx, "end_user.created", "end_user", &user.id, snapshot(&user)).await?;
    tx.commit().await?;
    Ok(user)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, end_user_id = %id))]
pub async fn get_end_user(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<EndUser> {
    found(
        db::get_end_user(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "end user",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_end_users(store: &Store, ctx: &Ctx, query: &EndUserQuery) -> ServiceResult<Page<EndUser>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    let mut conn = store.read().await?;
    let users = db::list_end_users(
        &mut conn,
        &ctx.tenant_id,
        query.customer_id.as_deref(),
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    Ok(paging.page(users, |u| &u.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, end_user_id = %id))]
pub async fn update_end_user(store: &Store, ctx: &Ctx, id: &str, patch: EndUserPatch) -> ServiceResult<EndUser> {
    let hash = password_hash(patch.password).await?;
    let mut tx = store.begin().await?;
    let before = found(db::get_end_user(&mut tx, &ctx.tenant_id, id).await?, "end user")?;
    let mut user = before.clone();
    user.email = patch.email.unwrap_or(user.email);
    user.name = patch.name.unwrap_or(user.name);
    user.role = patch.role.unwrap_or(user.role);
    user.updated_at = ctx.now;
    db::update_end_user(&mut tx, &ctx.tenant_id, &user)
        .await
        .map_err(on_duplicate(EMAIL_TAKEN.0, EMAIL_TAKEN.1))?;
    let mut summary = changes(&before, &user);
    if let Some(hash) = &hash {
        db::set_password(&mut tx, &ctx.tenant_id, id, hash).await?;
        summary["password"] = serde_json::json!("changed");
    }
    record(&mut tx, ctx, "end_user.updated", "end_user", id, summary).await?;
    tx.commit().await?;
    Ok(user)
}
