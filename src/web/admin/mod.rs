//! Administration over HTTP: the JSON API (`api`, Bearer tokens) and the management pages
//! (`pages`, browser session + CSRF). Both call the same service layer, `crate::admin`.

pub mod api;
pub mod pages;
