//! Entitle SDK for applications (being written: see issue 6).
