//! The four handlers (create, list, get, update) of a plain resource, generated with their
//! OpenAPI descriptions so that no route can go undocumented.

/// `crud!(module, tag, "/collection", "/collection/{id}", name, Item, New, Patch, Query, write permission, services::create, services::list, services::get, services::update)`
macro_rules! crud {
    (
        $module:ident, $tag:literal, $path:literal, $path_id:literal, $name:literal,
        item = $item:ty, new = $new:ty, patch = $patch:ty, query = $query:ty,
        create_permission = $create_permission:expr, update_permission = $update_permission:expr,
        create = $create:path, list = $list:path, get = $get:path, update = $update:path $(,)?
    ) => {
        pub mod $module {
            use axum::extract::State;
            use axum::http::StatusCode;
            use axum::Json;

            #[allow(unused_imports)]
            use super::*;
            use $crate::api::error::{ApiResult, ErrorBody};
            use $crate::api::extract::{ApiJson, ApiPath, ApiQuery, Caller, Permission};
            use $crate::app::AppState;
            use $crate::services::Page;

            #[utoipa::path(post, path = $path, tag = $tag, operation_id = concat!("create_", $name),
                                request_body = $new,
                                responses((status = 201, body = $item), (status = "4XX", body = ErrorBody)),
                                security(("api_key" = [])))]
            pub async fn create(
                State(app): State<AppState>,
                caller: Caller,
                ApiJson(body): ApiJson<$new>,
            ) -> ApiResult<(StatusCode, Json<$item>)> {
                let ctx = caller.require($create_permission)?;
                Ok((StatusCode::CREATED, Json($create(&app.store, &ctx, body).await?)))
            }

            #[utoipa::path(get, path = $path, tag = $tag, operation_id = concat!("list_", $name, "s"),
                                params($query),
                                responses((status = 200, body = Page<$item>), (status = "4XX", body = ErrorBody)),
                                security(("api_key" = [])))]
            pub async fn list(
                State(app): State<AppState>,
                caller: Caller,
                ApiQuery(query): ApiQuery<$query>,
            ) -> ApiResult<Json<Page<$item>>> {
                let ctx = caller.require(Permission::Read)?;
                Ok(Json($list(&app.store, &ctx, &query).await?))
            }

            #[utoipa::path(get, path = $path_id, tag = $tag, operation_id = concat!("get_", $name),
                                params(("id" = String, Path)),
                                responses((status = 200, body = $item), (status = "4XX", body = ErrorBody)),
                                security(("api_key" = [])))]
            pub async fn get(
                State(app): State<AppState>,
                caller: Caller,
                ApiPath(id): ApiPath<String>,
            ) -> ApiResult<Json<$item>> {
                let ctx = caller.require(Permission::Read)?;
                Ok(Json($get(&app.store, &ctx, &id).await?))
            }

            #[utoipa::path(patch, path = $path_id, tag = $tag, operation_id = concat!("update_", $name),
                                params(("id" = String, Path)),
                                request_body = $patch,
                                responses((status = 200, body = $item), (status = "4XX", body = ErrorBody)),
                                security(("api_key" = [])))]
            pub async fn update(
                State(app): State<AppState>,
                caller: Caller,
                ApiPath(id): ApiPath<String>,
                ApiJson(patch): ApiJson<$patch>,
            ) -> ApiResult<Json<$item>> {
                let ctx = caller.require($update_permission)?;
                Ok(Json($update(&app.store, &ctx, &id, patch).await?))
            }
        }
    };
}

pub(crate) use crud;
