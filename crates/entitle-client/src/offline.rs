//! Air-gapped machines: the activation request file the application writes, the licence file
//! it loads, and the deactivation request that frees the seat when the licence is removed.

use entitle_protocol::licence::{self, ACTIVATION_REQUEST_LABEL, DEACTIVATION_REQUEST_LABEL};
use entitle_protocol::{LeaseClaims, OfflineActivationRequest, OfflineDeactivationRequest};

use crate::cache::StoredActivation;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::new_nonce;

impl Client {
    /// The text of an activation request file for `code`: someone carries it to a connected
    /// machine and posts it to `/licensing/v1/offline/activate` (or the vendor's portal).
    ///
    /// The request's nonce is remembered in the cache file, and [`Client::load_licence_file`]
    /// accepts only the licence that answers the latest request: an old licence file cannot be
    /// loaded again after its seat was given back.
    pub fn write_activation_request(&self, code: &str, seat_name: Option<&str>) -> Result<String> {
        let config = &self.inner.config;
        let request = OfflineActivationRequest {
            tenant: config.tenant.clone(),
            product: config.product.clone(),
            activation_code: code.to_owned(),
            seat_id: config.seat_id.clone(),
            seat_name: seat_name.map(str::to_owned),
            nonce: new_nonce(),
        };
        let text = licence::write_request(ACTIVATION_REQUEST_LABEL, &request);
        let mut state = self.locked();
        state.cache.pending_offline_nonce = Some(request.nonce);
        self.save(&mut state)?;
        Ok(text)
    }

    /// Verifies a licence file (signature, product, seat, expiry, offline flag, and that it
    /// answers this installation's latest request) and makes it the current activation.
    pub fn load_licence_file(&self, text: &str) -> Result<LeaseClaims> {
        let config = &self.inner.config;
        let mut guard = self.locked();
        let state = &mut *guard;
        let now = self.observe_time(state)?;
        let claims = licence::verify_licence_file(text, &config.keys, now, &config.product, &config.seat_id)?;
        if claims.iss != config.tenant {
            return Err(Error::Malformed("the licence was issued by another tenant".into()));
        }
        match (&state.cache.pending_offline_nonce, &claims.nonce) {
            (Some(pending), Some(nonce)) if pending == nonce => {}
            _ => return Err(Error::Replay),
        }
        let secret = licence::read_licence_secret(text)
            .ok_or_else(|| Error::Malformed("the licence file holds no activation secret".into()))?;
        let token = licence::read_licence_file(text).ok_or_else(|| Error::Malformed("not a licence file".into()))?;
        state.cache.activation = Some(StoredActivation {
            id: claims.sub.clone(),
            secret,
            lease_token: token,
            offline: true,
            suspended: None,
        });
        state.cache.pending_offline_nonce = None;
        state.claims = Some(claims.clone());
        self.save(state)?;
        Ok(claims)
    }

    /// Removes the activation from this machine and returns the text of a deactivation request
    /// file: posted to `/licensing/v1/offline/deactivate`, it frees the seat. The activation is
    /// forgotten first, so the seat can never be both freed and still in use here.
    pub fn write_deactivation_request(&self) -> Result<String> {
        let config = &self.inner.config;
        let mut state = self.locked();
        let activation = state.cache.activation.take().ok_or(Error::NotActivated)?;
        state.claims = None;
        self.save(&mut state)?;
        let request = OfflineDeactivationRequest {
            tenant: config.tenant.clone(),
            activation_id: activation.id,
            activation_secret: activation.secret,
            seat_id: config.seat_id.clone(),
            nonce: new_nonce(),
        };
        Ok(licence::write_request(DEACTIVATION_REQUEST_LABEL, &request))
    }
}
