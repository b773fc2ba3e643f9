//! Extractors whose rejections are `ApiError`s, and the authenticated caller.

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

use super::error::ApiError;
use crate::app::AppState;
use crate::domain::Role;
use crate::services::{api_keys, Actor, ActorKind, Ctx};
use crate::store::api_keys::KeyOwner;

/// `axum::Json` with API errors: 400 malformed JSON, 422 wrong shape, 415, 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// A JSON body that may be left out entirely (actions whose parameters all have defaults).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_body = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|len| len != "0")
            || req.headers().contains_key(axum::http::header::TRANSFER_ENCODING);
        if !has_body {
            return Ok(OptionalJson(T::default()));
        }
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        Ok(OptionalJson(value))
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    ManageCatalogue,
    CreateCustomers,
    ManageCustomers,
    CreateEntitlements,
    /// Lifecycle actions and overrides on existing entitlements.
    ManageEntitlements,
    ManageKeys,
}

pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Support => matches!(permission, Read | ManageEntitlements),
        Role::Integration => matches!(permission, CreateCustomers | CreateEntitlements),
    }
}

/// The client's address: the peer's, or the one a trusted reverse proxy forwarded
/// (resolved once per request by [`crate::app`]'s front door).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(parts: &Parts) -> ClientIp {
        parts.extensions.get::<ClientIp>().copied().unwrap_or_else(|| {
            ClientIp(
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip()),
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts))
    }
}

/// What a staff role may do in the console: `admin` what an admin key may, `support` what a
/// support key may, `viewer` only read.
pub fn staff_allows(role: crate::domain::staff::StaffRole, permission: Permission) -> bool {
    use crate::domain::staff::StaffRole;
    match role {
        StaffRole::Admin => allows(Role::Admin, permission),
        StaffRole::Support => allows(Role::Support, permission),
        StaffRole::Viewer => permission == Permission::Read,
    }
}

/// The tenant and key behind `Authorization: Bearer …`.
pub struct Caller {
    pub owner: KeyOwner,
    pub ip: Option<String>,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<Ctx, ApiError> {
        if !allows(self.owner.role, permission) {
            return Err(ApiError::forbidden());
        }
        Ok(Ctx {
            tenant_id: self.owner.tenant_id.clone(),
            actor: Actor {
                kind: ActorKind::ApiKey,
                id: Some(self.owner.key_id.clone()),
                ip: self.ip.clone(),
                adds_end_users: allows(self.owner.role, Permission::ManageCustomers),
            },
            now: crate::services::now(),
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secret = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty() && secret.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?;
        let owner = api_keys::authenticate(&state.store, secret)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let route = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
        match route.and_then(|route| super::permissions::required(&parts.method, route)) {
            Some(permission) if allows(owner.role, permission) => {}
            Some(_) => return Err(ApiError::forbidden()),
            None => {
                tracing::error!(?route, method = %parts.method, "route missing from the permission table");
                return Err(ApiError::forbidden());
            }
        }
        let ip = Some(ClientIp::of(parts).0.to_string());
        Ok(Caller { owner, ip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_they_say() {
        use Permission::*;
        let all = [
            Read,
            ManageCatalogue,
            CreateCustomers,
            ManageCustomers,
            CreateEntitlements,
            ManageEntitlements,
            ManageKeys,
        ];
        assert!(all.iter().all(|p| allows(Role::Admin, *p)));
        let support: Vec<_> = all.iter().filter(|p| allows(Role::Support, **p)).collect();
        assert_eq!(support, [&Read, &ManageEntitlements]);
        let integration: Vec<_> = all.iter().filter(|p| allows(Role::Integration, **p)).collect();
        assert_eq!(integration, [&CreateCustomers, &CreateEntitlements]);
    }
}
