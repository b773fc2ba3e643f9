//! Background workers inside `serve` that drain an outbox: claim one row with a lease, work on it
//! outside any transaction, record the outcome, retry with backoff.

pub mod reminders;
pub mod webhooks;
