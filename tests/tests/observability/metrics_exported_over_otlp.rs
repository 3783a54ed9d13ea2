//! `[telemetry] metrics_endpoint`: the gateway sends the metrics `/metrics` serves to a real
//! OTLP/HTTP receiver as `ExportMetricsServiceRequest`s (decoded with the collector's message
//! types): request counts as monotonic sums, durations as histograms, with the same values.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use prost::Message;
use tollgate_tests::{Gateway, Upstream, get};

use super::support::{metrics, sample_sum};

/// Every metric of the latest export.
type Latest = Arc<Mutex<Option<Vec<Metric>>>>;

async fn metrics_receiver() -> (Upstream, Latest) {
    let latest: Latest = Arc::default();
    let seen = latest.clone();
    let upstream = Upstream::start(Arc::new(move |req| {
        let seen = seen.clone();
        Box::pin(async move {
            assert_eq!(req.uri().path(), "/v1/metrics");
            assert_eq!(req.headers()["content-type"], "application/x-protobuf");
            assert_eq!(req.headers()["x-tenant"], "t1");
            let export = ExportMetricsServiceRequest::decode(req.body().clone()).unwrap();
            let metrics = export
                .resource_metrics
                .into_iter()
                .flat_map(|r| r.scope_metrics)
                .flat_map(|s| s.metrics)
                .collect();
            *seen.lock().unwrap() = Some(metrics);
            let body = ExportMetricsServiceResponse::default().encode_to_vec();
            Response::builder()
                .header("content-type", "application/x-protobuf")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        })
    }))
    .await;
    (upstream, latest)
}

/// The sum of a counter's data points in an export.
fn counter_total(metrics: &[Metric], name: &str) -> Option<i64> {
    let metric = metrics.iter().find(|m| m.name == name)?;
    let Some(metric::Data::Sum(sum)) = &metric.data else {
        panic!("{name} is not a sum: {metric:?}")
    };
    assert!(sum.is_monotonic);
    Some(
        sum.data_points
            .iter()
            .map(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                Some(number_data_point::Value::AsDouble(v)) => v as i64,
                None => 0,
            })
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_and_durations_reach_the_collector() {
    let (receiver, latest) = metrics_receiver().await;
    let upstream = Upstream::echo("u").await;
    let gateway = Gateway::start(&format!(
        r#"
[gateway]
cache_dir = "{{cache}}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[telemetry]
metrics_endpoint = "http://{receiver}"
metrics_interval_ms = 200
headers = {{ x-tenant = "t1" }}

[upstreams.u]
targets = ["{target}"]

[[routes]]
name = "r"
path_prefix = "/"
upstream = "u"
"#,
        receiver = receiver.addr,
        target = upstream.target(),
    ))
    .await;
    for _ in 0..7 {
        assert_eq!(get(&gateway.url("/x"), &[]).await.status, 200);
    }

    let deadline = Instant::now() + Duration::from_secs(5);
    let exported = loop {
        let current = latest.lock().unwrap().clone();
        if let Some(metrics) = &current
            && counter_total(metrics, "tollgate_requests_total") == Some(7)
        {
            break metrics.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no export counted 7 requests within 5 s: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The same figure as /metrics.
    let text = metrics(gateway.admin.unwrap()).await;
    assert_eq!(sample_sum(&text, "tollgate_requests_total", ""), 7.0);

    let duration = exported
        .iter()
        .find(|m| m.name == "tollgate_request_duration_seconds")
        .expect("the request duration histogram is exported");
    let Some(metric::Data::Histogram(histogram)) = &duration.data else {
        panic!("not a histogram: {duration:?}")
    };
    let point = &histogram.data_points[0];
    assert_eq!(point.count, 7);
    assert_eq!(point.bucket_counts.iter().sum::<u64>(), 7);
    assert_eq!(point.bucket_counts.len(), point.explicit_bounds.len() + 1);
    assert!(point.sum.unwrap() > 0.0);
    assert!(
        point
            .attributes
            .iter()
            .any(|a| a.key == "route" && format!("{:?}", a.value).contains("\"r\"")),
        "{:?}",
        point.attributes
    );
    // No trace endpoint: nothing was traced, nothing dropped.
    assert_eq!(
        sample_sum(&text, "tollgate_telemetry_spans_dropped_total", ""),
        0.0
    );
}
