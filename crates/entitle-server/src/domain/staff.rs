//! The vendor's staff: who may use the admin console, and with which role.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Email;

/// What a staff member may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Everything.
    Admin,
    /// Reads everything; entitlement actions and overrides, seat revoke, resend mail, replay
    /// deliveries. No catalogue, keys, staff or connection secrets.
    Support,
    /// Reads only.
    Viewer,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Support => "support",
            StaffRole::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<StaffRole> {
        match text {
            "admin" => Some(StaffRole::Admin),
            "support" => Some(StaffRole::Support),
            "viewer" => Some(StaffRole::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffMember {
    pub id: String,
    pub tenant_id: String,
    pub email: Email,
    pub role: StaffRole,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in [StaffRole::Admin, StaffRole::Support, StaffRole::Viewer] {
            assert_eq!(StaffRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(StaffRole::parse("integration"), None);
    }
}
