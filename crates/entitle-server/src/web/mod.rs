//! The web applications: the end-user portal (`/portal/…`) and, later, the admin console
//! (`/admin/…`). Server-rendered HTML from templates embedded in the binary, one stylesheet,
//! no script needed (a small script only enhances: copy buttons).

pub mod assets;
pub mod chart;
