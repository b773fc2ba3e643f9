//! Entitle: a self-hosted entitlement and licensing server.
//!
//! `main.rs` is a thin command-line shell over this library; tests drive the same
//! [`app::Application`] on port 0.

pub mod api;
pub mod app;
pub mod cli;
pub mod commerce;
pub mod config;
pub mod custody;
pub mod demo;
pub mod domain;
pub mod log_writer;
pub mod mail;
pub mod metrics;
pub mod server;
pub mod services;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod tls;
pub mod web;
pub mod workers;

pub use app::Application;
pub use config::Config;
