//! Entitle's licensing protocol, shared by the server and the client SDK so the two cannot drift:
//! the wire types, the lease token and licence file formats, and their Ed25519 signatures.
//! No I/O: callers bring bytes and keys.
//!
//! * Every licensing response body is signed: the `Entitle-Signature` header is a JWS with a
//!   detached payload (RFC 7515, appendix F) over the exact body bytes.
//! * A lease token is a compact JWS (a JWT, `alg: EdDSA`) whose payload is [`LeaseClaims`].
//!   Because refresh and state responses carry the lease claims as their body, the response
//!   signature and the body together *are* the new lease token ([`jws::attach`]): one signature
//!   per response.
//! * A licence file (offline activation) is a lease token between PEM-style armour lines.

pub mod jwks;
pub mod jws;
pub mod lease;
pub mod licence;
pub mod wire;

pub use jwks::{Jwk, Jwks};
pub use jws::{JwsError, PublicKey, Signer};
pub use lease::{AttributeClaims, EntitlementClaims, FeatureClaim, LeaseClaims, SeatClaims};
pub use wire::*;

/// The response header that carries the detached JWS over the response body.
pub const SIGNATURE_HEADER: &str = "entitle-signature";

/// The request header that carries the client's nonce on activation-scoped calls.
pub const NONCE_HEADER: &str = "entitle-nonce";
