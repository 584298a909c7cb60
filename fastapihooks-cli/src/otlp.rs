//! Trace export over OTLP (`fastapihooks start --otlp-endpoint`, cargo feature `otlp`): the
//! sidecar's `fastapihooks.fan_out` and `fastapihooks.attempt` spans sent to an OpenTelemetry
//! collector, each a child of the span that published its event in the application — one trace
//! from the request that emitted an event to every attempt of its deliveries.
//!
//! The library crates depend on `tracing` only; this module is where OpenTelemetry comes in:
//! [`TraceExport`] installs a `tracing-opentelemetry` layer beside the log lines, and gives the
//! engine a [`TraceContext`] that attaches each event's `traceparent` as the remote parent of its
//! spans. Spans leave in batches on a thread of their own; if the collector cannot be reached
//! they are dropped (telemetry, never a delivery), and the rest are flushed when the sidecar
//! stops.
//!
//! Built without the feature, `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) is refused
//! with the way to rebuild, never ignored.

use clap::{Args, ValueEnum};
use url::Url;

/// `fastapihooks start`'s trace export flags.
#[derive(Clone, Debug, Args)]
pub struct OtlpArgs {
    /// Export the sidecar's spans to this OpenTelemetry collector over OTLP/HTTP: its base URL
    /// (`http://localhost:4318`; spans go to `/v1/traces` under it). Needs the `otlp` cargo
    /// feature. Default: no export.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<Url>,
    /// How spans are encoded for the collector. The service name is `OTEL_SERVICE_NAME`, else
    /// `fastapihooks`.
    #[arg(
        long,
        value_enum,
        value_name = "PROTOCOL",
        default_value_t = OtlpProtocol::HttpProtobuf,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL"
    )]
    pub otlp_protocol: OtlpProtocol,
}

/// The OTLP/HTTP encodings (gRPC is not built in: point it at the collector's HTTP port, 4318).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// Protocol buffers, the OTLP default.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// JSON.
    #[value(name = "http/json")]
    HttpJson,
}

impl OtlpArgs {
    /// Where spans are posted: `/v1/traces` under the endpoint.
    pub fn traces_url(&self) -> Option<String> {
        self.otlp_endpoint
            .as_ref()
            .map(|base| format!("{}/v1/traces", base.as_str().trim_end_matches('/')))
    }
}

#[cfg(feature = "otlp")]
pub use export::TraceExport;

#[cfg(feature = "otlp")]
mod export {
    use std::sync::Arc;

    use anyhow::Context as _;
    use fastapihooks_core::trace::{TraceContext, TraceParent};
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        TracerProvider as _,
    };
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::{OtlpArgs, OtlpProtocol};
    use crate::logging::ExtraLayer;

    /// The installed exporter: its `tracing` layer and the engine's trace context; flushed by
    /// [`shutdown`](Self::shutdown).
    #[derive(Debug)]
    pub struct TraceExport {
        provider: SdkTracerProvider,
    }

    impl TraceExport {
        /// Starts exporting to `args.otlp_endpoint`; `None` when it is not set.
        pub fn start(args: &OtlpArgs) -> anyhow::Result<Option<Self>> {
            let Some(url) = args.traces_url() else {
                return Ok(None);
            };
            let protocol = match args.otlp_protocol {
                OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
                OtlpProtocol::HttpJson => Protocol::HttpJson,
            };
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(&url)
                .with_protocol(protocol)
                .build()
                .with_context(|| format!("cannot export traces to {url}"))?;
            let mut resource = Resource::builder();
            if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|name| name.is_empty()) {
                resource = resource.with_service_name("fastapihooks");
            }
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.build())
                .build();
            Ok(Some(Self { provider }))
        }

        /// The layer turning the process's spans into OpenTelemetry spans.
        pub fn layer(&self) -> ExtraLayer {
            let tracer = self.provider.tracer("fastapihooks");
            Box::new(tracing_opentelemetry::layer().with_tracer(tracer))
        }

        /// What the engine attaches each event's trace context with.
        pub fn trace_context(&self) -> Arc<dyn TraceContext> {
            Arc::new(OpenTelemetryContext)
        }

        /// Exports the spans still batched, then stops the export thread.
        pub async fn shutdown(self) {
            let provider = self.provider;
            match tokio::task::spawn_blocking(move || provider.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the last spans could not be exported"),
                Err(e) => tracing::warn!(error = %e, "the span export did not stop cleanly"),
            }
        }
    }

    /// This crate's [`TraceContext`] on OpenTelemetry (through `tracing-opentelemetry`).
    #[derive(Debug)]
    struct OpenTelemetryContext;

    impl TraceContext for OpenTelemetryContext {
        fn current(&self) -> Option<TraceParent> {
            let context = tracing::Span::current().context();
            let span = context.span();
            let ids = span.span_context();
            if !ids.is_valid() {
                return None;
            }
            TraceParent::from_ids(
                ids.trace_id().to_bytes(),
                ids.span_id().to_bytes(),
                ids.is_sampled(),
            )
        }

        fn attach(&self, span: &tracing::Span, parent: &TraceParent) {
            let flags = if parent.sampled() {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            };
            let remote = SpanContext::new(
                TraceId::from_bytes(parent.trace_id_bytes()),
                SpanId::from_bytes(parent.parent_id_bytes()),
                flags,
                true,
                TraceState::default(),
            );
            let parent_context = opentelemetry::Context::new().with_remote_span_context(remote);
            if let Err(e) = span.set_parent(parent_context) {
                tracing::debug!(error = %e, "a span could not join its event's trace");
            }
        }
    }
}

#[cfg(not(feature = "otlp"))]
pub use disabled::TraceExport;

#[cfg(not(feature = "otlp"))]
mod disabled {
    use std::sync::Arc;

    use fastapihooks_core::trace::TraceContext;

    use super::OtlpArgs;
    use crate::logging::ExtraLayer;

    /// Trace export, not built in: never constructed.
    #[derive(Debug)]
    pub enum TraceExport {}

    impl TraceExport {
        /// Refuses an OTLP endpoint: this binary was built without the `otlp` feature.
        pub fn start(args: &OtlpArgs) -> anyhow::Result<Option<Self>> {
            match &args.otlp_endpoint {
                None => Ok(None),
                Some(url) => anyhow::bail!(
                    "--otlp-endpoint {url} (or OTEL_EXPORTER_OTLP_ENDPOINT) asks for trace export, \
                     but this fastapihooks was built without it: rebuild with the `otlp` feature \
                     (`cargo install fastapihooks-cli --features otlp`), or unset it"
                ),
            }
        }

        /// Never called: there is no exporter.
        pub fn layer(&self) -> ExtraLayer {
            match *self {}
        }

        /// Never called: there is no exporter.
        pub fn trace_context(&self) -> Arc<dyn TraceContext> {
            match *self {}
        }

        /// Never called: there is no exporter.
        pub async fn shutdown(self) {
            match self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoint: &str) -> OtlpArgs {
        OtlpArgs {
            otlp_endpoint: Some(endpoint.parse().unwrap()),
            otlp_protocol: OtlpProtocol::HttpProtobuf,
        }
    }

    #[test]
    fn spans_are_posted_to_v1_traces_under_the_endpoint() {
        for (endpoint, traces) in [
            ("http://localhost:4318", "http://localhost:4318/v1/traces"),
            ("http://localhost:4318/", "http://localhost:4318/v1/traces"),
            (
                "https://collector.example/otlp/",
                "https://collector.example/otlp/v1/traces",
            ),
        ] {
            assert_eq!(args(endpoint).traces_url().as_deref(), Some(traces));
        }
    }
}
