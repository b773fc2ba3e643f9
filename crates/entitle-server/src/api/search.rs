//! The admin console's one search box, also for API clients.

use axum::extract::State;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiQuery, Caller, Permission};
use crate::app::AppState;
use crate::services::search::{self, SearchQuery, SearchResults};

/// Finds customers, end users, entitlements and seats by what support has at hand. `q` is taken
/// as an activation code if it is one (exact code); an email (customers' and end users' email,
/// and seats held under it); one of our ids (`cus_`, `ent_`, `act_`, `usr_`: that object); else
/// an order reference or provider subscription id (exact), a provider customer id (its orders'
/// entitlements), a customer `external_ref` or seat id (exact), or the start of a customer or seat
/// name (case-insensitive; only ASCII letters fold case on SQLite). Every lookup is indexed.
#[utoipa::path(get, path = "/search", tag = "search", operation_id = "search",
    params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let ctx = caller.require(Permission::Read)?;
    let q = query.q.as_deref().unwrap_or("");
    Ok(Json(search::search(&app.store, &ctx, q, query.limit).await?))
}
