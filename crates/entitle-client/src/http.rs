//! Talking to the licensing server: a fresh nonce per request, retries with backoff, and the
//! verification every answer goes through before anything reads it (signature, then nonce).

use std::time::Duration;

use entitle_protocol::{jws, PublicKey, SIGNATURE_HEADER};
use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::config::{Config, RetryPolicy};
use crate::error::{Denial, Error, Result};

pub(crate) const NONCE_HEADER: &str = "entitle-nonce";

/// A random nonce: 24 alphanumerics (~143 bits), within the server's 8–128 printable ASCII.
pub(crate) fn new_nonce() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Whether a request may be sent again after an attempt whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotence {
    /// Sending twice does no harm (reading, refreshing, activating the same seat).
    Idempotent,
    /// Sending twice may count twice (usage, checkouts): only retried when it surely never
    /// reached the server (the connection failed) or the server said it did nothing (503).
    CountsTwice,
}

/// An answer whose signature verified against the pinned keys and whose nonce is the one sent.
#[derive(Debug)]
pub(crate) struct Answer {
    pub bytes: Vec<u8>,
    pub signature: String,
    pub nonce: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    base: String,
    keys: Vec<PublicKey>,
    retry: RetryPolicy,
}

/// The outcome of one attempt: final, or worth another try (with the error to report if not).
enum Attempt {
    Done(Result<Answer>),
    Retry(Error),
}

impl Transport {
    pub fn new(config: &Config) -> Result<Transport> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("entitle-client/", env!("CARGO_PKG_VERSION")));
        for certificate in &config.root_certificates {
            builder = builder.add_root_certificate(certificate.clone());
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Transport {
            http,
            base: config.server_url.clone(),
            keys: config.keys.clone(),
            retry: config.retry,
        })
    }

    /// Sends a request, retrying as the policy allows. `body` builds the JSON body for a
    /// nonce (each attempt has its own nonce, so an answer to an earlier attempt is refused).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: impl Fn(&str) -> Option<Vec<u8>>,
        idempotence: Idempotence,
    ) -> Result<Answer> {
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let nonce = new_nonce();
            match self
                .attempt(method.clone(), path, bearer, body(&nonce), nonce, idempotence)
                .await
            {
                Attempt::Done(outcome) => return outcome,
                Attempt::Retry(error) if attempt >= attempts => return Err(error),
                Attempt::Retry(_) => {
                    let jitter = rand::thread_rng().gen_range(0.75..1.25);
                    tokio::time::sleep(self.retry.backoff(attempt).mul_f64(jitter)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Vec<u8>>,
        nonce: String,
        idempotence: Idempotence,
    ) -> Attempt {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(NONCE_HEADER, &nonce);
        if let Some(secret) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {secret}"));
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let error = Error::Network(e.to_string());
                return if e.is_connect() || idempotence == Idempotence::Idempotent {
                    Attempt::Retry(error)
                } else {
                    Attempt::Done(Err(error))
                };
            }
        };
        let status = response.status();
        if status.is_server_error() {
            let error = Error::Server {
                status: status.as_u16(),
            };
            return if idempotence == Idempotence::Idempotent || status == StatusCode::SERVICE_UNAVAILABLE {
                Attempt::Retry(error)
            } else {
                Attempt::Done(Err(error))
            };
        }
        let headers = response.headers().clone();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => {
                let error = Error::Network(e.to_string());
                return match idempotence {
                    Idempotence::Idempotent => Attempt::Retry(error),
                    Idempotence::CountsTwice => Attempt::Done(Err(error)),
                };
            }
        };
        Attempt::Done(self.verify(status, &headers, bytes, nonce))
    }

    /// Nothing of an answer is read before its signature verified; then its nonce must be ours.
    fn verify(&self, status: StatusCode, headers: &HeaderMap, bytes: Vec<u8>, nonce: String) -> Result<Answer> {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(Error::BadSignature)?
            .to_owned();
        jws::verify_detached(&signature, &bytes, &self.keys).map_err(|_| Error::BadSignature)?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| Error::Malformed("the answer is not JSON".into()))?;
        if value.get("nonce").and_then(|n| n.as_str()) != Some(nonce.as_str()) {
            return Err(Error::Replay);
        }
        if status.is_success() {
            return Ok(Answer {
                bytes,
                signature,
                nonce,
            });
        }
        let denial: entitle_protocol::Denial = serde_json::from_value(value)
            .map_err(|_| Error::Malformed(format!("HTTP {status} without a denial body")))?;
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(Error::Denied(Denial::from_code(&denial.error.code, retry_after)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_fresh_and_acceptable_to_the_server() {
        let a = new_nonce();
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|b| b.is_ascii_graphic()));
        assert_ne!(a, new_nonce());
    }
}
