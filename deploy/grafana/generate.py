#!/usr/bin/env python3
"""Writes pingan's Grafana dashboards (dashboards/*.json) from the panel lists below.

    python3 deploy/grafana/generate.py          # rewrite the JSON files
    python3 deploy/grafana/generate.py --check  # exit 1 if a committed file differs (make test-deploy)

Every expression uses only metrics the Rust code registers; `deploy-checks metrics` (make
test-deploy) parses each one with Prometheus' PromQL parser and compares the names with the code.
Stage label values: classifier, aggregator. Ingest `status` is the HTTP code; the query API's
`status_class` is 2xx/4xx/5xx.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
RI = "$__rate_interval"


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


class Board:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels, self.y, self.x, self.next_id, self.row_h = [], 0, 0, 1, 0
        self.variables = []

    def row(self, title):
        if self.x:
            self.y += self.row_h
            self.x = 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1
        self.row_h = 0

    def panel(self, title, targets, unit="short", w=8, h=8, kind="timeseries", description="", stack=False):
        if self.x + w > 24:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        p = {
            "type": kind,
            "title": title,
            "description": description,
            "id": self.next_id,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
        }
        if kind == "timeseries":
            p["fieldConfig"]["defaults"]["custom"] = {
                "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
        if kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
        self.panels.append(p)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)

    def query_var(self, name, label, query):
        self.variables.append({
            "name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query, "refresh": 2, "includeAll": True, "multi": True,
            "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "hide": 0, "options": [], "regex": ""})

    def json(self):
        return {
            "__inputs": [],
            "annotations": {"list": []},
            "description": self.description,
            "editable": True,
            "graphTooltip": 1,
            "links": [{"title": "pingan dashboards", "type": "dashboards", "tags": ["pingan"], "asDropdown": True}],
            "panels": self.panels,
            "refresh": "30s",
            "schemaVersion": 39,
            "tags": ["pingan"],
            "templating": {"list": [{
                "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
                "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}] + self.variables},
            "time": {"from": "now-6h", "to": "now"},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }


def pipeline():
    b = Board("pingan-pipeline", "pingan / pipeline",
              "Throughput, lag and freshness per stage, dead letters, sink retries, ClickHouse INSERTs, "
              "spike-detector health and maintenance. Stages: classifier (raw topics -> enriched), "
              "aggregator (enriched -> ClickHouse).")
    b.query_var("stage", "stage", "label_values(pingan_stage_received_events_total, stage)")
    S = 'stage=~"$stage"'
    b.row("Throughput")
    b.panel("Records accepted by ingest (Kafka acknowledged)",
            [(f"sum by (topic) (rate(pingan_ingest_records_produced_total[{RI}]))", "{{topic}}")], "ops")
    b.panel("Stage records in / out",
            [(f"sum by (stage) (rate(pingan_stage_received_events_total{{{S}}}[{RI}]))", "{{stage}} received"),
             (f"sum by (stage) (rate(pingan_stage_emitted_events_total{{{S}}}[{RI}]))", "{{stage}} written")], "ops")
    b.panel("Rows written to ClickHouse",
            [(f"sum(rate(pingan_aggregator_rows_written_total[{RI}]))", "rows/s")], "ops")
    b.panel("Classified events by category",
            [(f"sum by (category) (rate(pingan_classifier_events_total[{RI}]))", "{{category}}")], "ops", w=12, stack=True)
    b.panel("Records dropped on purpose, by reason",
            [(f"sum by (stage, reason) (rate(pingan_stage_discarded_events_total{{{S}}}[{RI}]))", "{{stage}} {{reason}}")],
            "ops", w=12)
    b.row("Lag and freshness")
    b.panel("Consumer lag per stage (records)",
            [(f"sum by (stage) (pingan_stage_lag_events{{{S}}})", "{{stage}}")], "short",
            description="High watermark minus the next offset to process, summed over partitions.")
    b.panel("Freshness: seconds behind (lag / write rate)",
            [(f"sum by (stage) (pingan_stage_lag_events{{{S}}}) / clamp_min(sum by (stage) "
              f"(rate(pingan_stage_emitted_events_total{{{S}}}[{RI}])), 0.001)", "{{stage}}")], "s",
            description="pingan exports no end-to-end event-time freshness metric; this is the time the "
                        "current backlog takes at the current write rate. Add the batch cut age and the "
                        "write latency for the floor (about 0.6-0.9 s at low load in the benchmark).")
    b.panel("Batch cut age (adaptive)",
            [(f"max by (stage) (pingan_stage_batch_age_seconds{{{S}}})", "{{stage}}")], "s",
            description="Age at which a partition's batch is cut now; grows with busy partitions "
                        "(aggregator paces INSERTs).")
    b.panel("Lag by topic and partition",
            [(f"sum by (stage, topic, partition) (pingan_stage_lag_events{{{S}}})", "{{stage}} {{topic}}/{{partition}}")],
            "short", w=12)
    b.panel("Sink write latency p50 / p99",
            [(f"histogram_quantile(0.5, sum by (stage, le) (rate(pingan_stage_sink_write_seconds_bucket{{{S}}}[{RI}])))", "{{stage}} p50"),
             (f"histogram_quantile(0.99, sum by (stage, le) (rate(pingan_stage_sink_write_seconds_bucket{{{S}}}[{RI}])))", "{{stage}} p99")],
            "s", w=12)
    b.row("Dead letters and retries")
    b.panel("Dead letters by stage and code",
            [(f"sum by (stage, code) (rate(pingan_stage_dead_letters_total{{{S}}}[{RI}]))", "{{stage}} {{code}}")], "ops")
    b.panel("Sink retries by stage and code",
            [(f"sum by (stage, code) (rate(pingan_stage_sink_retries_total{{{S}}}[{RI}]))", "{{stage}} {{code}}")], "ops")
    b.panel("ClickHouse INSERT outcomes",
            [(f"sum by (outcome) (rate(pingan_aggregator_insert_outcomes_total[{RI}]))", "{{outcome}}")], "ops")
    b.panel("INSERT latency p50 / p99",
            [(f"histogram_quantile(0.5, sum by (le) (rate(pingan_aggregator_insert_seconds_bucket[{RI}])))", "p50"),
             (f"histogram_quantile(0.99, sum by (le) (rate(pingan_aggregator_insert_seconds_bucket[{RI}])))", "p99")], "s")
    b.panel("Rows per INSERT (mean)",
            [(f"sum(rate(pingan_aggregator_batch_rows_sum[{RI}])) / clamp_min(sum(rate(pingan_aggregator_batch_rows_count[{RI}])), 1e-9)", "rows")],
            "short")
    b.panel("Records per batch (mean)",
            [(f"sum by (stage) (rate(pingan_stage_batch_events_sum{{{S}}}[{RI}])) / clamp_min(sum by (stage) (rate(pingan_stage_batch_events_count{{{S}}}[{RI}])), 1e-9)", "{{stage}}")],
            "short")
    b.row("Spike detector")
    b.panel("Alerts emitted by level and area level",
            [(f"sum by (level, area_level) (increase(pingan_alerts_emitted_total[{RI}]))", "{{level}} {{area_level}}")], "short")
    b.panel("Would-be alerts held back, by reason",
            [(f"sum by (reason) (increase(pingan_alerts_suppressed_total[{RI}]))", "{{reason}}")], "short")
    b.panel("Webhook failures and detector resyncs",
            [(f"sum by (kind) (increase(pingan_alerts_webhook_failures_total[{RI}]))", "webhook {{kind}}"),
             (f"sum(increase(pingan_alerts_resyncs_total[{RI}]))", "resyncs")], "short",
            description="A resync: detection fell behind the sink and re-read stored events from ClickHouse "
                        "(normal once while draining a backlog; alerts are late, none lost).")
    b.panel("Series tracked", [("sum(pingan_alerts_series)", "series")], "short", w=8)
    b.panel("Detector memory by part",
            [("sum by (part) (pingan_alerts_detector_bytes)", "{{part}}")], "bytes", w=16, stack=True)
    b.row("Maintenance (sealed days, retention)")
    b.panel("Closed days not sealed yet", [("max(pingan_aggregator_unsealed_days)", "days")], "short", kind="stat", w=6, h=6)
    b.panel("Days sealed", [(f"sum(increase(pingan_aggregator_sealed_days_total[{RI}]))", "sealed")], "short", w=6, h=6)
    b.panel("Seal time p99",
            [(f"histogram_quantile(0.99, sum by (le) (rate(pingan_aggregator_seal_seconds_bucket[{RI}])))", "p99")], "s", w=6, h=6)
    b.panel("Partitions dropped / maintenance errors",
            [(f"sum(increase(pingan_aggregator_partitions_dropped_total[{RI}]))", "partitions dropped"),
             (f"sum(increase(pingan_aggregator_maintenance_errors_total[{RI}]))", "errors")], "short", w=6, h=6)
    return b


def apis():
    b = Board("pingan-apis", "pingan / ingest and query APIs",
              "ingest: CAD feed and citizens' QR reports (2xx/4xx/5xx, rejections, Kafka acknowledgements); "
              "serve: query API latency, ClickHouse query latency, live push.")
    b.row("Ingest")
    api = 'route=~"/v1/.*|/qr/.*"'
    b.panel("Ingest responses 2xx / 4xx / 5xx",
            [(f'sum(rate(pingan_ingest_requests_total{{{api},status=~"2.."}}[{RI}]))', "2xx"),
             (f'sum(rate(pingan_ingest_requests_total{{{api},status=~"4.."}}[{RI}]))', "4xx"),
             (f'sum(rate(pingan_ingest_requests_total{{{api},status=~"5.."}}[{RI}]))', "5xx")], "reqps", stack=True)
    b.panel("Ingest responses by route and status",
            [(f"sum by (route, status) (rate(pingan_ingest_requests_total{{{api}}}[{RI}]))", "{{route}} {{status}}")], "reqps")
    b.panel("Ingest latency p50 / p99 by route",
            [(f"histogram_quantile(0.5, sum by (route, le) (rate(pingan_ingest_request_duration_seconds_bucket{{{api}}}[{RI}])))", "{{route}} p50"),
             (f"histogram_quantile(0.99, sum by (route, le) (rate(pingan_ingest_request_duration_seconds_bucket{{{api}}}[{RI}])))", "{{route}} p99")], "s")
    b.panel("Rejected requests by reason",
            [(f"sum by (route, reason) (rate(pingan_ingest_rejected_requests_total[{RI}]))", "{{route}} {{reason}}")], "reqps")
    b.panel("Invalid fields by code",
            [(f"sum by (code) (rate(pingan_ingest_invalid_fields_total[{RI}]))", "{{code}}")], "ops")
    b.panel("Kafka: produce errors and acknowledgement time p99",
            [(f"sum by (topic, code) (rate(pingan_ingest_produce_errors_total[{RI}]))", "errors {{topic}} {{code}}"),
             (f"histogram_quantile(0.99, sum by (topic, le) (rate(pingan_ingest_produce_duration_seconds_bucket[{RI}])))", "ack p99 {{topic}} (s)")],
            "short")
    b.panel("Requests in flight", [("sum(pingan_ingest_in_flight_requests)", "in flight")], "short", w=12)
    b.panel("Producer queue (records waiting for Kafka)",
            [("sum(pingan_ingest_producer_queue_depth_records)", "queued")], "short", w=12)
    b.row("Query API and dashboard (serve)")
    q = 'route=~"/v1/.*"'
    b.panel("Query API requests by status class",
            [(f"sum by (status_class) (rate(pingan_query_http_request_duration_seconds_count{{{q}}}[{RI}]))", "{{status_class}}")],
            "reqps", stack=True)
    b.panel("Query latency p50 / p95 / p99",
            [(f"histogram_quantile(0.5, sum by (le) (rate(pingan_query_http_request_duration_seconds_bucket{{{q}}}[{RI}])))", "p50"),
             (f"histogram_quantile(0.95, sum by (le) (rate(pingan_query_http_request_duration_seconds_bucket{{{q}}}[{RI}])))", "p95"),
             (f"histogram_quantile(0.99, sum by (le) (rate(pingan_query_http_request_duration_seconds_bucket{{{q}}}[{RI}])))", "p99")], "s")
    b.panel("Query latency p99 by route",
            [(f"histogram_quantile(0.99, sum by (route, le) (rate(pingan_query_http_request_duration_seconds_bucket{{{q}}}[{RI}])))", "{{route}}")], "s")
    b.panel("ClickHouse query latency p99 by query",
            [(f"histogram_quantile(0.99, sum by (query, le) (rate(pingan_query_store_query_duration_seconds_bucket[{RI}])))", "{{query}}")], "s")
    b.panel("ClickHouse query errors",
            [(f'sum by (query) (rate(pingan_query_store_query_duration_seconds_count{{outcome="error"}}[{RI}]))', "{{query}}")], "ops")
    b.panel("Live push: clients, polls, messages",
            [("sum(pingan_query_live_clients)", "clients"),
             (f"sum by (outcome) (rate(pingan_query_live_polls_total[{RI}]))", "polls {{outcome}}/s"),
             (f"sum by (kind) (rate(pingan_query_live_messages_total[{RI}]))", "messages {{kind}}/s")], "short")
    return b


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for board in (pipeline(), apis()):
        path = HERE / "dashboards" / f"{board.uid}.json"
        text = json.dumps(board.json(), indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python3 deploy/grafana/generate.py): " + " ".join(stale), file=sys.stderr)
        return 1
    if check:
        print("dashboards are up to date with generate.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
