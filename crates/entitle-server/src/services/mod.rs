//! Use cases: each public function is one unit of work (one transaction for writes) that parses
//! nothing, decides through `domain`, persists through `store` and records what it changed as events.
//! The management API, the CLI and (later) the storefront connectors all call these.

pub mod api_keys;
pub mod attempts;
pub mod branding;
pub mod catalogue;
pub mod commerce;
pub mod console;
pub mod customers;
pub mod entitlements;
pub mod events;
pub mod hashing;
pub mod housekeeping;
pub mod idempotency;
pub mod lease_writer;
pub mod licensing;
pub mod mail;
pub mod portal;
pub mod reminders;
pub mod search;
pub mod sessions;
pub mod signing;
pub mod staff;
pub mod tenants;
pub mod usage;
pub mod webhook_guard;
pub mod webhooks;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::domain::{ids, PageLimit, RuleViolation};
use crate::store::{self, StoreError};

/// The current time at the precision the store keeps (milliseconds), so what a call returns
/// equals what a later read returns.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Who is acting, for the event log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub ip: Option<String>,
    /// May this actor make new end users (who can sign in and, for account-based products, take
    /// seats)? Admin keys, storefront purchases and the system may; support and integration keys
    /// may only reach the customer's own address and its existing end users.
    pub adds_end_users: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    ApiKey,
    EndUser,
    Staff,
    Storefront,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::ApiKey => "api_key",
            ActorKind::EndUser => "end_user",
            ActorKind::Staff => "staff",
            ActorKind::Storefront => "storefront",
            ActorKind::System => "system",
        }
    }
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: None,
            ip: None,
            adds_end_users: true,
        }
    }
}

/// The tenant a use case runs for, who runs it, and the time it runs at.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub tenant_id: String,
    pub actor: Actor,
    pub now: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The object (of this kind) does not exist for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request breaks a business rule.
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    /// The request conflicts with the current state (a duplicate SKU, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The server is at capacity for this kind of work (password hashing): try again later.
    #[error("the server is busy; try again in {retry_after_seconds} s")]
    Busy { retry_after_seconds: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        ServiceError::Store(StoreError::Database(error))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Turns a uniqueness violation into a conflict with a stable code.
pub(crate) fn on_duplicate(code: &'static str, message: &'static str) -> impl FnOnce(StoreError) -> ServiceError {
    move |error| match error {
        StoreError::Duplicate => ServiceError::Conflict {
            code,
            message: message.to_owned(),
        },
        other => ServiceError::Store(other),
    }
}

pub(crate) fn found<T>(value: Option<T>, kind: &'static str) -> ServiceResult<T> {
    value.ok_or(ServiceError::NotFound(kind))
}

/// Appends one event in the caller's transaction.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    action: &str,
    object_kind: &str,
    object_id: &str,
    summary: serde_json::Value,
) -> ServiceResult<()> {
    let event = store::events::Event {
        id: ids::new_id("evt"),
        actor_kind: ctx.actor.kind.as_str().to_owned(),
        actor_id: ctx.actor.id.clone(),
        action: action.to_owned(),
        object_kind: object_kind.to_owned(),
        object_id: object_id.to_owned(),
        summary,
        ip: ctx.actor.ip.clone(),
        created_at: ctx.now,
    };
    store::events::insert(conn, &ctx.tenant_id, &event).await?;
    webhooks::on_event(conn, &ctx.tenant_id, &event).await?;
    Ok(())
}

/// A created object's values for the event log, without its timestamps.
pub(crate) fn snapshot(value: &impl Serialize) -> serde_json::Value {
    let mut json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let Some(object) = json.as_object_mut() {
        object.remove("created_at");
        object.remove("updated_at");
    }
    json
}

/// `{field: {"from": old, "to": new}}` for every top-level field that differs.
pub(crate) fn changes(before: &impl Serialize, after: &impl Serialize) -> serde_json::Value {
    let before = snapshot(before);
    let after = snapshot(after);
    let mut diff = serde_json::Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (key, new) in after {
            let old = before.get(key).unwrap_or(&serde_json::Value::Null);
            if old != new {
                diff.insert(key.clone(), serde_json::json!({ "from": old, "to": new }));
            }
        }
    }
    serde_json::Value::Object(diff)
}

/// One page of a listing, and the cursor for the next (`null` on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `after` to fetch the next page.
    pub next_after: Option<String>,
}

/// Cursor paging: `?limit=` (1–200, default 50) and `?after=` (the last id seen).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    #[param(inline)]
    pub limit: Option<PageLimit>,
    pub after: Option<String>,
}

impl Paging {
    pub const DEFAULT_LIMIT: u32 = 50;

    /// `limit` was bounded when the query was parsed (`PageLimit`); kept so callers read the same.
    pub fn check(&self) -> Result<(), RuleViolation> {
        Ok(())
    }

    fn limit(&self) -> u32 {
        self.limit.map_or(Self::DEFAULT_LIMIT, PageLimit::get)
    }

    pub fn after(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }

    /// One more than a page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit() as i64 + 1
    }

    pub fn page<T>(&self, mut items: Vec<T>, id: impl Fn(&T) -> &str) -> Page<T> {
        let limit = self.limit() as usize;
        let next_after = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|item| id(item).to_owned())
        } else {
            None
        };
        Page {
            data: items,
            next_after,
        }
    }
}

/// For PATCH bodies: tells "absent" (`None`) from "set to null" (`Some(None)`).
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
