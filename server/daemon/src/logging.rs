//! Where the daemon's log goes and in which format: human-readable text (the default) or one
//! JSON object per line for log pipelines (`--log-format json`).
//!
//! Both write to stderr and take their filter from `RUST_LOG` (default `info`). A JSON line
//! carries `timestamp` (RFC 3339, UTC), `level`, `target`, `message` and the event's own
//! fields at the top level (`{"timestamp":"…","level":"INFO","message":"serving",…}`), so
//! that Loki, Vector or Elasticsearch index them without a parser of their own.

use std::io::{self, IsTerminal};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::{SubscriberInitExt as _, TryInitError};

/// `--log-format`: how log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and the event's fields.
    Json,
}

/// Installs the process-wide subscriber (and the `log` bridge for aya's records).
///
/// Fails only if a subscriber is installed already.
pub fn init(format: LogFormat) -> Result<(), TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(io::stderr().is_terminal())
            .finish()
            .try_init(),
        LogFormat::Json => builder
            .json()
            // The event's fields beside timestamp, level and target, not under "fields".
            .flatten_event(true)
            .finish()
            .try_init(),
    }
}
