//! The SDK against the real server, started in-process on port 0 with a temporary SQLite
//! database and the demo catalogue (PhotoForge, entitlement PF-PRO-Y with 6 seats).

mod harness;

mod clock;
mod flow;
mod forgery;
mod jose;
mod offline;
mod refresher;
mod seats;
mod tls;
