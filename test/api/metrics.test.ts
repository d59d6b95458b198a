import { describe, expect, test } from "bun:test";
import { Metrics, ROUTE_SERIES_MAX } from "../../src/api/metrics.ts";

const GAUGES = { treeSize: 0, storageBytes: 0, raftTerm: 1, raftCommitIndex: 0, raftAppliedIndex: 0, writeQueueDepth: 0, healthy: true };

/** The histogram series (method, route) pairs in a Prometheus rendering. */
function histogramSeries(text: string): string[] {
  return [...text.matchAll(/^scribe_http_request_duration_seconds_count\{(.*)\} \d+$/gm)].map((match) => match[1]!);
}

describe("metrics", () => {
  test("counts requests per method, route and status, with a latency histogram per method and route", () => {
    const metrics = new Metrics();
    metrics.observe("PUT", "/v1/kv/*", 201, 0.0004);
    metrics.observe("PUT", "/v1/kv/*", 201, 0.003);
    metrics.observe("PUT", "/v1/kv/*", 412, 0.02);
    metrics.observe("GET", "/v1/kv/*", 200, 20);
    const text = metrics.prometheus(GAUGES);
    expect(text).toContain('scribe_http_requests_total{method="PUT",route="/v1/kv/*",status="201"} 2');
    expect(text).toContain('scribe_http_requests_total{method="PUT",route="/v1/kv/*",status="412"} 1');
    expect(text).toContain('scribe_http_request_duration_seconds_bucket{method="PUT",route="/v1/kv/*",le="0.0005"} 1');
    expect(text).toContain('scribe_http_request_duration_seconds_bucket{method="PUT",route="/v1/kv/*",le="0.005"} 2');
    expect(text).toContain('scribe_http_request_duration_seconds_bucket{method="PUT",route="/v1/kv/*",le="+Inf"} 3');
    // Slower than the largest bucket: only +Inf holds it.
    expect(text).toContain('scribe_http_request_duration_seconds_bucket{method="GET",route="/v1/kv/*",le="10"} 0');
    expect(text).toContain('scribe_http_request_duration_seconds_bucket{method="GET",route="/v1/kv/*",le="+Inf"} 1');
    expect(metrics.json(GAUGES)).toMatchObject({ requests_total: 4, error_responses: 1 });
  });

  test("series past the limit fold into one, whatever methods clients send", () => {
    const metrics = new Metrics();
    for (let i = 0; i < ROUTE_SERIES_MAX * 2; i++) metrics.observe(`M${i}`, `/route/${i}`, 200, 0.001);
    const series = histogramSeries(metrics.prometheus(GAUGES));
    expect(series.length).toBe(ROUTE_SERIES_MAX + 1);
    expect(series).toContain('method="other",route="other"');
    expect(metrics.prometheus(GAUGES)).toContain(`scribe_http_requests_total{method="other",route="other",status="200"} ${ROUTE_SERIES_MAX}`);
    expect(metrics.json(GAUGES)).toMatchObject({ requests_total: ROUTE_SERIES_MAX * 2 });
  });
});
