//! The sidecar's logs: to stderr, as text for people or JSON lines for a log collector, coloured
//! only when stderr is a terminal (never in a file, a pipe or a container log).

use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event for people; coloured on a terminal only.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, `target`, …).
    Json,
}

/// The format installed by [`init`], for [`print_error`].
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The subscriber the log lines and any [`ExtraLayer`] sit on: the registry, filtered by the
/// log filter.
pub type Filtered = tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>;

/// A layer beside the log lines, e.g. the OTLP span export of [`crate::otlp::TraceExport`].
pub type ExtraLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// Installs the global logger: stderr, filtered by `filter` (e.g. `info`,
/// `fastapihooks_core=debug`), else `RUST_LOG`, else `info`, with `extra` beside it (seeing the
/// same spans). Does nothing if a logger is already installed.
pub fn init(filter: Option<&str>, format: LogFormat, extra: Option<ExtraLayer>) {
    let filter = match filter {
        Some(filter) => EnvFilter::new(filter),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines: ExtraLayer = match format {
        LogFormat::Text => Box::new(lines.with_ansi(colour())),
        LogFormat::Json => Box::new(lines.json().with_ansi(false)),
    };
    let layers: Vec<ExtraLayer> = std::iter::once(lines).chain(extra).collect();
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    if installed.is_ok() {
        let _ = FORMAT.set(format);
    }
}

/// Colour codes only for a person at a terminal, and not if they set `NO_COLOR`.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints the error a command ended with on stderr: `error: …`, or, when JSON logs are on, one
/// more JSON line of the same shape as the others (so a log collector can read every line).
pub fn print_error(message: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = if FORMAT.get() == Some(&LogFormat::Json) {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "fields": { "message": message },
            "target": "fastapihooks",
        });
        writeln!(stderr, "{line}")
    } else {
        writeln!(stderr, "error: {message}")
    };
}
