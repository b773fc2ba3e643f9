//! The Entitle SDK for applications.
//!
//! Activate a seat, keep a verified lease token, check features offline, check out pool units,
//! record metered usage, refresh in the background, and work on air-gapped machines with
//! licence files.
//!
//! ```no_run
//! use entitle_client::{Client, Config, Credential, Denial, Error};
//!
//! # async fn run() -> Result<(), Error> {
//! const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","use":"sig"}]}"#;
//! let seat = entitle_client::device_fingerprint("prd_123", "/var/lib/myapp/installation-id".as_ref())
//!     .map_err(|e| Error::Config(e.to_string()))?;
//! let config = Config::new("https://licensing.example.com", "ten_123", "prd_123", JWKS, seat, "/var/lib/myapp/licence.json")?;
//! let client = Client::new(config)?;
//! if !client.is_activated() {
//!     match client.activate(Credential::Code("7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ".into()), Some("Ada's laptop")).await {
//!         Err(Error::Denied(Denial::SeatLimitReached)) => eprintln!("every seat is taken"),
//!         other => { other?; }
//!     }
//! }
//! let _refresher = client.spawn_refresher();
//! if client.is_enabled("batch_export")? {
//!     // …
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Security model: the tenant's public keys are pinned in the [`Config`]. Every answer must carry
//! a detached JWS over its exact body from one of those keys and echo the request's fresh nonce;
//! every lease token must name this product and seat and be valid now; the clock may not go
//! back. Anything else is refused with a typed [`Error`].

#![warn(missing_docs)]

mod cache;
mod client;
mod clock;
mod config;
mod error;
mod fingerprint;
mod http;
mod offline;
mod refresher;

pub use client::{Client, Credential};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, RefreshSchedule, RetryPolicy};
pub use entitle_protocol::{AttributeClaims, EntitlementClaims, FeatureClaim, LeaseClaims, SeatClaims};
pub use error::{Denial, Error, Result};
pub use fingerprint::device_fingerprint;
pub use refresher::{RefreshHandle, RefreshStatus};
