//! The status codes: 0 is success, 1–99 the server's denials (one per denial code), 100 and up
//! what the SDK refused or could not do. `include/entitle.h` lists the same numbers; the C
//! test checks every name against this table.

use std::ffi::{c_int, CStr};

use entitle_client::{Denial, Error};

macro_rules! statuses {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        $(pub const $name: c_int = $value;)*
        /// Every status and its stable name (the wire code for denials).
        pub const NAMES: &[(c_int, &CStr)] = &[$(($value, $text)),*];
    };
}

statuses! {
    OK = 0, c"ok";
    INVALID_REQUEST = 1, c"invalid_request";
    INVALID_CREDENTIAL = 2, c"invalid_credential";
    INVALID_ACTIVATION = 3, c"invalid_activation";
    ENTITLEMENT_NOT_STARTED = 4, c"entitlement_not_started";
    ENTITLEMENT_EXPIRED = 5, c"entitlement_expired";
    ENTITLEMENT_DISABLED = 6, c"entitlement_disabled";
    SEAT_LIMIT_REACHED = 7, c"seat_limit_reached";
    FEATURE_NOT_ENTITLED = 8, c"feature_not_entitled";
    POOL_EXHAUSTED = 9, c"pool_exhausted";
    NOTHING_CHECKED_OUT = 10, c"nothing_checked_out";
    USAGE_LIMIT_REACHED = 11, c"usage_limit_reached";
    LEASE_EXPIRED = 12, c"lease_expired";
    OFFLINE_NOT_ALLOWED = 13, c"offline_not_allowed";
    RATE_LIMITED = 14, c"rate_limited";
    SERVER_BUSY = 15, c"server_busy";
    DENIED_OTHER = 99, c"denied";
    NOT_ACTIVATED = 100, c"not_activated";
    BAD_SIGNATURE = 101, c"bad_signature";
    REPLAY = 102, c"replay";
    EXPIRED = 103, c"expired";
    CLOCK_SET_BACK = 104, c"clock_set_back";
    WRONG_PRODUCT = 105, c"wrong_product";
    WRONG_SEAT = 106, c"wrong_seat";
    NETWORK = 107, c"network";
    SERVER = 108, c"server";
    MALFORMED = 109, c"malformed";
    CONFIG = 110, c"config";
    CACHE = 111, c"cache";
    INVALID_ARGUMENT = 120, c"invalid_argument";
    NOT_FOUND = 121, c"not_found";
    PANIC = 122, c"internal";
}

pub fn name(status: c_int) -> Option<&'static CStr> {
    NAMES.iter().find(|(value, _)| *value == status).map(|(_, name)| *name)
}

pub fn of_denial(denial: &Denial) -> c_int {
    match denial {
        Denial::InvalidRequest => INVALID_REQUEST,
        Denial::InvalidCredential => INVALID_CREDENTIAL,
        Denial::InvalidActivation => INVALID_ACTIVATION,
        Denial::EntitlementNotStarted => ENTITLEMENT_NOT_STARTED,
        Denial::EntitlementExpired => ENTITLEMENT_EXPIRED,
        Denial::EntitlementDisabled => ENTITLEMENT_DISABLED,
        Denial::SeatLimitReached => SEAT_LIMIT_REACHED,
        Denial::FeatureNotEntitled => FEATURE_NOT_ENTITLED,
        Denial::PoolExhausted => POOL_EXHAUSTED,
        Denial::NothingCheckedOut => NOTHING_CHECKED_OUT,
        Denial::UsageLimitReached => USAGE_LIMIT_REACHED,
        Denial::LeaseExpired => LEASE_EXPIRED,
        Denial::OfflineNotAllowed => OFFLINE_NOT_ALLOWED,
        Denial::RateLimited { .. } => RATE_LIMITED,
        Denial::Other(code) if code == "server_busy" => SERVER_BUSY,
        Denial::Other(_) => DENIED_OTHER,
    }
}

pub fn of_error(error: &Error) -> c_int {
    match error {
        Error::Denied(denial) => of_denial(denial),
        Error::NotActivated => NOT_ACTIVATED,
        Error::BadSignature => BAD_SIGNATURE,
        Error::Replay => REPLAY,
        Error::LeaseExpired => EXPIRED,
        Error::ClockTampered => CLOCK_SET_BACK,
        Error::WrongProduct => WRONG_PRODUCT,
        Error::WrongSeat => WRONG_SEAT,
        Error::Network(_) => NETWORK,
        Error::Server { .. } => SERVER,
        Error::Config(_) => CONFIG,
        Error::Cache { .. } => CACHE,
        _ => MALFORMED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_names_are_the_wire_codes() {
        for (value, name) in NAMES.iter().filter(|(v, _)| (1..=15).contains(v)) {
            let wire = name.to_str().unwrap();
            assert_eq!(of_denial(&Denial::from_code(wire, None)), *value, "{wire}");
        }
        let values: std::collections::HashSet<_> = NAMES.iter().map(|(v, _)| v).collect();
        assert_eq!(values.len(), NAMES.len(), "no two statuses share a number");
    }
}
