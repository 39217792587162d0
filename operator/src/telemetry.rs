//! Logging: plain or JSON lines, filtered by `--log-filter` (RUST_LOG
//! syntax). Log lines carry names and fingerprints, never values.

use clap::ValueEnum;
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.try_init(),
        // `spans`: the reconcile's namespace, resource and id, and the
        // environment, on every line logged inside them.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
}
