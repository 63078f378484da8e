//! Logging and Prometheus metrics. The recorder is process-global (metrics' design), installed once even when
//! tests start several servers in one process.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let h = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); then ours just renders empty.
        let _ = metrics::set_global_recorder(recorder);
        h
    })
}

/// Installs the recorder (idempotent).
pub fn init_metrics() {
    let _ = handle();
}

pub fn render() -> String {
    handle().render()
}

pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("latchkey_http_requests_total", &labels).increment(1);
    metrics::histogram!("latchkey_http_request_duration_seconds", "route" => route.to_owned())
        .record(elapsed.as_secs_f64());
}

/// Installs the tracing subscriber once; `filter` is an env-filter directive such as `info`.
pub fn init_logging(filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
