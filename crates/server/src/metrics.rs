//! Metrics in Prometheus text format (`GET /metrics`). One recorder per process, shared
//! by every gateway in it (tests run several). Names, all prefixed `wxgate_`:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `http_requests_total` | route, status | requests answered |
//! | `http_request_duration_seconds` | route | latency histogram |
//! | `upstream_calls_total` | endpoint, errcode | calls to WeChat; errcode `0`, WeChat's, `http_5xx` or `transport` |
//! | `credential_fetches_today` | account, kind | fetches on the current UTC day (quota 2000) |
//! | `credential_daily_quota` | | the configured daily quota |
//! | `credential_expires_at` | account, kind | unix time the served credential expires |
//! | `lock_waits_total` | kind | obtains that waited for another instance's refresh |
//! | `dedup_hits_total` | account | pushes answered from the first attempt's reply |
//! | `push_refused_total` | account, status | pushes refused with a 4xx |
//! | `webhook_total` | account, outcome | replied, no_reply, late_delivered, failed |
//! | `webhook_duration_seconds` | | each webhook call's time (histogram) |
//! | `pushes_total` | outcome | handled pushes by what answered: rule, handler, webhook, none, timeout |
//! | `store_errors_total` | store | failed store operations |
//! | `store_up` | store, mode | 1 while the Redis store answers, 0 from a command that found it unreachable |
//! | `store_outages_total` | store, mode | times the Redis store stopped answering (one log line each) |
//! | `store_commands_total` | store | Redis commands sent, each one round trip (a script is one) |
//! | `credentials` | kind, state | credentials by state: `ok`, `due` (to be refreshed), `failing` (none usable) |
//!
//! With `metrics.per_account_labels = false` (thousands of accounts), every `account`
//! label is `*` ([`account_label`]) and the per-account gauges are not kept: one series
//! per family, not one per account; `credentials{kind,state}` says how many are where.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static PER_ACCOUNT: AtomicBool = AtomicBool::new(true);

/// Sets whether series carry the account's name (the recorder is the process's, so is
/// this; the last gateway built decides).
pub fn set_per_account_labels(on: bool) {
    PER_ACCOUNT.store(on, Ordering::Relaxed);
}

/// Whether series carry the account's name.
pub fn per_account_labels() -> bool {
    PER_ACCOUNT.load(Ordering::Relaxed)
}

/// The `account` label of a series: the account's name, or `*` without per-account
/// labels. A third-party platform's merchants (`platform:wx…`, thousands of them) count
/// under their platform (`platform:*`), so that authorizations cannot grow the labels.
pub fn account_label(name: &str) -> String {
    if !per_account_labels() {
        return "*".to_owned();
    }
    match name.split_once(':') {
        Some((component, appid)) if appid.starts_with("wx") => format!("{component}:*"),
        _ => name.to_owned(),
    }
}

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder once; later calls return the same handle.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The text exposition.
pub fn render() -> String {
    install().map(|h| h.render()).unwrap_or_default()
}

/// Histograms keep raw samples until they are folded into their buckets: without a
/// scrape they would grow with every request. Fold them every few seconds.
pub fn spawn_upkeep(stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    crate::util::spawn_periodic(std::time::Duration::from_secs(5), stop, || async {
        if let Some(h) = install() {
            h.run_upkeep();
        }
    })
}
