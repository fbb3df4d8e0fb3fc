//! Structured logs with `tracing`: text for people, JSON (`log_format = "json"`) for machines.
//! `RUST_LOG` overrides `log_level`. Nothing secret is ever put in a log field: handlers log ids,
//! never tokens, codes, passwords or query strings.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // stdout belongs to command output (`client create --json`); logs go to stderr.
        .with_writer(std::io::stderr);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
