//! Integration tests: one binary, the real server on port 0, real SQLite files and (with
//! `ENTITLE_TEST_DATABASE_URL`) real PostgreSQL databases.

mod helpers;

mod access;
mod bad_input;
mod branding;
mod broken_stderr;
mod browser;
mod catalogue;
mod cli;
mod commerce;
mod commerce_abuse;
mod connections;
mod console;
mod console_catalogue;
mod console_journey;
mod console_storefronts;
mod custody;
mod entitlements;
mod events;
mod hardening;
mod idempotency;
mod licensing;
mod mail;
mod mail_abuse;
mod mail_crash;
mod mail_tls;
mod ops;
mod outage;
mod plans;
mod portal;
mod portal_journey;
mod reminders;
mod search;
mod smtp;
mod storefront_semantics;
mod tls;
mod upgrade;
mod usage;
mod webhooks;
