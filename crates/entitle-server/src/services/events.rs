use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Ctx, Page, Paging, ServiceResult};
use crate::store::events::{self as db, Event, EventFilter};
use crate::store::Store;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events about this object (e.g. an entitlement id).
    pub object_id: Option<String>,
    /// Only events about this kind of object (`entitlement`, `customer`, …).
    pub object_kind: Option<String>,
    /// Only this action (`entitlement.renewed`, …).
    pub action: Option<String>,
    /// From this time on (inclusive), RFC 3339.
    pub since: Option<DateTime<Utc>>,
    /// Before this time (exclusive), RFC 3339.
    pub until: Option<DateTime<Utc>>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

/// Events in the order they happened.
pub async fn list(store: &Store, ctx: &Ctx, query: &EventQuery) -> ServiceResult<Page<Event>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    let filter = EventFilter {
        object_id: query.object_id.as_deref(),
        object_kind: query.object_kind.as_deref(),
        action: query.action.as_deref(),
        since: query.since,
        until: query.until,
        after: paging.after(),
        limit: paging.fetch_limit(),
    };
    let events = db::list(&mut *store.read().await?, &ctx.tenant_id, &filter).await?;
    Ok(paging.page(events, |e| &e.id))
}
