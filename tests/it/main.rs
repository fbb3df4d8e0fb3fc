//! The integration suite: one binary, the real server on port 0, real HTTP.
//!
//! Every test runs on SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL too (see
//! `backend_tests!` in `helpers`). Without it the PostgreSQL variants show as ignored, never as
//! passed; tests needing an outside tool (chromium, chromedriver, node, aiosmtpd, schemathesis,
//! nginx, openssl, systemd-analyze) fail when it is missing: tests/run.sh installs them.

mod helpers;

mod abuse;
mod account_page;
mod accounts;
mod admin_api;
mod admin_mail;
mod admin_openapi;
mod admin_pages;
mod browser;
mod cli;
mod cors;
mod cross;
mod deploy;
mod email_identity;
mod faults;
mod flow;
mod hardening;
mod keyring;
mod mail_requeue;
mod metrics;
mod mfa;
mod nodes;
mod phone;
mod proxies;
mod refresh_batch;
mod sessions;
mod stepup;
mod throttle;
mod tokens;
