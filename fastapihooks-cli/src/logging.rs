//! The sidecar's logs: to stderr, as text for people or JSON lines for a log collector, coloured
//! only when stderr is a terminal (never in a file, a pipe or a container log).

use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;

use clap::ValueEnum;
use fastapihooks_core::trace::PER_DELIVERY_SPANS;
use tracing_subscriber::filter::filter_fn;
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
///
/// The log lines leave out the spans made for every delivery
/// ([`PER_DELIVERY_SPANS`](fastapihooks_core::trace::PER_DELIVERY_SPANS)): a text or JSON line
/// layer formats a span's fields as the span is made, on every delivery, though almost none
/// has a line written inside it: 4–5 µs of the sidecar's CPU per delivery with one subscriber,
/// 8–10 % of it (BENCHMARKS.md, session 25). The lines written inside them carry the event,
/// delivery and subscription ids and the attempt number as fields of their own; `extra` (the
/// OTLP export) still gets the spans.
pub fn init(filter: Option<&str>, format: LogFormat, extra: Option<ExtraLayer>) {
    if subscriber(filter, format, extra, std::io::stderr)
        .try_init()
        .is_ok()
    {
        let _ = FORMAT.set(format);
    }
}

/// The logger [`init`] installs, writing its lines to `writer`.
fn subscriber<W>(
    filter: Option<&str>,
    format: LogFormat,
    extra: Option<ExtraLayer>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = match filter {
        Some(filter) => EnvFilter::new(filter),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    // Decided once per span's call site from its name and target, never per span made.
    let not_per_delivery = filter_fn(|meta| {
        !(meta.is_span()
            && meta.target().starts_with("fastapihooks_core")
            && PER_DELIVERY_SPANS.contains(&meta.name()))
    });
    let lines: ExtraLayer = match format {
        LogFormat::Text => Box::new(lines.with_ansi(colour()).with_filter(not_per_delivery)),
        LogFormat::Json => Box::new(lines.json().with_ansi(false).with_filter(not_per_delivery)),
    };
    let layers: Vec<ExtraLayer> = std::iter::once(lines).chain(extra).collect();
    tracing_subscriber::registry().with(filter).with(layers)
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use fastapihooks_core::trace::{ATTEMPT_SPAN, FAN_OUT_SPAN};
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    use super::*;

    /// Where the lines go in these tests.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// An `extra` layer that notes the names of the spans it is shown.
    #[derive(Clone, Default)]
    struct SpanNames(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanNames {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: Context<'_, S>,
        ) {
            let name = attrs.metadata().name().to_owned();
            self.0.lock().unwrap().push(name);
        }
    }

    /// Runs `f` under the logger `init` installs, at `info`, with a [`SpanNames`] beside it.
    fn logged(format: LogFormat, f: impl FnOnce()) -> (String, Vec<String>) {
        let lines = Lines::default();
        let names = SpanNames::default();
        let writer = {
            let lines = lines.clone();
            move || lines.clone()
        };
        let extra: ExtraLayer = Box::new(names.clone());
        let logger = subscriber(Some("info"), format, Some(extra), writer);
        tracing::subscriber::with_default(logger, f);
        let seen = names.0.lock().unwrap().clone();
        (lines.text(), seen)
    }

    /// A span of the library's, as the engine makes it (its target is the engine's module).
    fn per_delivery_span(name: &'static str) -> tracing::Span {
        match name {
            FAN_OUT_SPAN => {
                tracing::info_span!(target: "fastapihooks_core::engine", FAN_OUT_SPAN, event = "evt_1")
            }
            _ => {
                tracing::info_span!(target: "fastapihooks_core::engine", ATTEMPT_SPAN, delivery = "dlv_1")
            }
        }
    }

    #[test]
    fn log_lines_leave_out_the_per_delivery_spans_which_the_extra_layer_still_gets() {
        for format in [LogFormat::Text, LogFormat::Json] {
            let (text, seen) = logged(format, || {
                for name in PER_DELIVERY_SPANS {
                    per_delivery_span(name).in_scope(|| tracing::warn!("written inside {name}"));
                }
            });
            for name in PER_DELIVERY_SPANS {
                assert!(text.contains(&format!("written inside {name}")), "{text}");
                assert!(!text.contains(&format!("{name}{{")), "{format:?}: {text}");
                assert!(!text.contains(&format!("\"name\":\"{name}\"")), "{text}");
                assert!(seen.iter().any(|s| s == name), "{seen:?}");
            }
        }
    }

    #[test]
    fn log_lines_keep_every_other_span() {
        let (text, _) = logged(LogFormat::Text, || {
            let request = tracing::info_span!("request", path = "/orders");
            request.in_scope(|| tracing::warn!("written inside the request"));
        });
        assert!(
            text.contains("request{path=\"/orders\"}: ") && text.contains("written inside"),
            "{text}"
        );
    }
}
