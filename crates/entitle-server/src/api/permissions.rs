//! The one table of what each management operation requires. The authenticated caller is
//! checked against it before the request body is read, so a key without the right role learns
//! nothing from validation errors and changes nothing; a route missing here is refused to every
//! role (fail closed), and a test walks the OpenAPI document to keep this table complete.

use axum::http::Method;

use super::extract::Permission::{self, *};

/// (method, route template under `/api/v1`, permission).
const TABLE: &[(&str, &str, Permission)] = &[
    ("GET", "/products", Read),
    ("POST", "/products", ManageCatalogue),
    ("GET", "/products/{id}", Read),
    ("PATCH", "/products/{id}", ManageCatalogue),
    ("GET", "/features", Read),
    ("POST", "/features", ManageCatalogue),
    ("GET", "/features/{id}", Read),
    ("PATCH", "/features/{id}", ManageCatalogue),
    ("GET", "/attributes", Read),
    ("POST", "/attributes", ManageCatalogue),
    ("GET", "/attributes/{id}", Read),
    ("PATCH", "/attributes/{id}", ManageCatalogue),
    ("GET", "/editions", Read),
    ("POST", "/editions", ManageCatalogue),
    ("GET", "/editions/{id}", Read),
    ("PATCH", "/editions/{id}", ManageCatalogue),
    ("GET", "/plans", Read),
    ("POST", "/plans", ManageCatalogue),
    ("GET", "/plans/{id}", Read),
    ("PATCH", "/plans/{id}", ManageCatalogue),
    ("GET", "/plans/{id}/reminder-schedule", Read),
    ("PUT", "/plans/{id}/reminder-schedule", ManageCatalogue),
    ("GET", "/offerings", Read),
    ("POST", "/offerings", ManageCatalogue),
    ("GET", "/offerings/{id}", Read),
    ("PATCH", "/offerings/{id}", ManageCatalogue),
    ("GET", "/customers", Read),
    ("POST", "/customers", CreateCustomers),
    ("GET", "/customers/{id}", Read),
    ("PATCH", "/customers/{id}", ManageCustomers),
    ("GET", "/end-users", Read),
    ("POST", "/end-users", ManageCustomers),
    ("GET", "/end-users/{id}", Read),
    ("PATCH", "/end-users/{id}", ManageCustomers),
    ("GET", "/entitlements", Read),
    ("POST", "/entitlements", CreateEntitlements),
    ("GET", "/entitlements/{id}", Read),
    ("PATCH", "/entitlements/{id}", ManageEntitlements),
    ("POST", "/entitlements/{id}/renew", ManageEntitlements),
    ("POST", "/entitlements/{id}/change-offering", ManageEntitlements),
    ("POST", "/entitlements/{id}/add-seats", ManageEntitlements),
    ("POST", "/entitlements/{id}/disable", ManageEntitlements),
    ("POST", "/entitlements/{id}/enable", ManageEntitlements),
    ("POST", "/entitlements/{id}/reset-overrides", ManageEntitlements),
    ("POST", "/entitlements/{id}/resend-credentials", ManageEntitlements),
    ("GET", "/entitlements/{id}/activations", Read),
    ("GET", "/entitlements/{id}/activation-log", Read),
    ("GET", "/entitlements/{id}/usage", Read),
    ("GET", "/activations/{id}", Read),
    ("POST", "/activations/{id}/revoke", ManageEntitlements),
    ("GET", "/mails", Read),
    ("GET", "/mail-templates", Read),
    ("PUT", "/mail-templates", ManageCatalogue),
    ("GET", "/api-keys", ManageKeys),
    ("POST", "/api-keys", ManageKeys),
    ("DELETE", "/api-keys/{id}", ManageKeys),
    ("GET", "/events", Read),
    ("GET", "/storefront-connections", Read),
    ("POST", "/storefront-connections", ManageCatalogue),
    ("GET", "/storefront-connections/{id}", Read),
    ("PATCH", "/storefront-connections/{id}", ManageCatalogue),
    ("GET", "/storefront-mappings", Read),
    ("POST", "/storefront-mappings", ManageCatalogue),
    ("DELETE", "/storefront-mappings/{id}", ManageCatalogue),
    ("GET", "/storefront-deliveries", Read),
    ("GET", "/storefront-deliveries/{id}", Read),
    ("POST", "/storefront-deliveries/{id}/replay", ManageEntitlements),
    ("GET", "/branding", Read),
    ("PUT", "/branding", ManageCatalogue),
    ("GET", "/search", Read),
    ("GET", "/webhook-endpoints", Read),
    ("POST", "/webhook-endpoints", ManageCatalogue),
    ("GET", "/webhook-endpoints/{id}", Read),
    ("PATCH", "/webhook-endpoints/{id}", ManageCatalogue),
    ("DELETE", "/webhook-endpoints/{id}", ManageCatalogue),
    ("POST", "/webhook-endpoints/{id}/rotate-secret", ManageCatalogue),
    ("POST", "/webhook-endpoints/{id}/test", ManageCatalogue),
    ("GET", "/webhook-endpoints/{id}/deliveries", Read),
    ("GET", "/webhook-deliveries/{id}", Read),
    ("POST", "/webhook-deliveries/{id}/replay", ManageEntitlements),
];

/// What `method` on the management route `template` (as matched, `/api/v1/…`) requires;
/// `None` for a route the table does not know.
pub fn required(method: &Method, template: &str) -> Option<Permission> {
    let path = template.strip_prefix("/api/v1")?;
    TABLE
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, permission)| *permission)
}
