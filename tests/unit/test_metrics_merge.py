"""merge_metrics and the percentiles, on hand-made snapshots (no server)."""

import math

from s3torchconnector import merge_metrics


def snapshot(durations_us, requests=None, peak=1):
    """A snapshot as S3Client.metrics() gives it, holding these request durations."""
    histogram = {}
    for microseconds in durations_us:
        bucket = int(math.log2(microseconds) * 8)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    counts = dict.fromkeys(
        ("requests", "bytes", "retries", "throttles", "server_errors", "stalls_dropped", "failed"), 0
    )
    counts["requests"] = len(durations_us) if requests is None else requests
    counts["histograms"] = {"first_byte_us": {}, "duration_us": histogram}
    return {"operations": {"GetObject": counts}, "peak_connections": peak}


def test_percentiles_are_within_five_percent():
    durations = [1000 * (i + 1) for i in range(100)]  # 1 ms .. 100 ms
    got = merge_metrics([snapshot(durations)])["operations"]["GetObject"]["duration_ms"]
    for label, exact in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        assert abs(got[label] - exact) / exact < 0.05, (label, got[label])


def test_merging_equals_counting_everything_in_one_process():
    first, second = [1000] * 90, [200_000] * 10
    merged = merge_metrics([snapshot(first, peak=3), snapshot(second, peak=5)])
    together = merge_metrics([snapshot(first + second)])["operations"]["GetObject"]
    got = merged["operations"]["GetObject"]
    assert got["requests"] == 100 and merged["peak_connections"] == 8
    assert got["duration_ms"] == together["duration_ms"]
    assert got["duration_ms"]["p50"] < 1.1 and got["duration_ms"]["p99"] > 190


def test_no_requests_gives_no_percentiles():
    got = merge_metrics([snapshot([])])["operations"]["GetObject"]
    assert got["first_byte_ms"] == {"p50": None, "p90": None, "p99": None}


def test_node_cache_counters_add_up():
    cache = dict(hits=3, misses=2, bytes_from_cache=300, revalidations=1, evictions=0, fallbacks=0)
    worker = dict(snapshot([1000]), cache=cache)
    other = dict(snapshot([1000]), cache=dict(cache, hits=5, evictions=4))
    merged = merge_metrics([worker, other, snapshot([1000])])  # a process without the cache has no counters
    assert merged["cache"] == dict(hits=8, misses=4, bytes_from_cache=600, revalidations=2, evictions=4, fallbacks=0)
    assert "cache" not in merge_metrics([snapshot([1000])])
