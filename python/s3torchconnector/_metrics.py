"""What a client's requests did: counters and latency percentiles per S3 operation.

The native client counts as each HTTP request finishes; `S3Client.metrics()` shapes those counts here.
A snapshot is a plain dict (picklable, JSON-serialisable) and carries its latency histograms, so the
snapshots of DataLoader workers or ranks merge exactly with `merge_metrics`.
"""

from typing import Dict, Iterable, Mapping, Optional

# The native histograms hold eight log buckets per doubling of microseconds (cpp/metrics.h).
_BUCKETS_PER_DOUBLING = 8
_PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
COUNTERS = ("requests", "bytes", "bytes_in_place", "retries", "throttles", "server_errors", "stalls_dropped", "failed")
CACHE_COUNTERS = ("hits", "misses", "bytes_from_cache", "revalidations", "evictions", "fallbacks")
_LATENCIES = (("first_byte_us", "first_byte_ms"), ("duration_us", "duration_ms"))


def empty_metrics() -> dict:
    return {"operations": {}, "peak_connections": 0}


def empty_cache_counters() -> dict:
    """The node cache's counters of a process that read nothing through it yet."""
    return dict.fromkeys(CACHE_COUNTERS, 0)


def shape(raw: Mapping) -> dict:
    """The user-facing snapshot of the native counters (see S3Client.metrics)."""
    return merge_metrics([_as_snapshot(raw)])


def merge_metrics(snapshots: Iterable[Mapping]) -> dict:
    """One snapshot for several processes: counts add, histograms add, percentiles are recomputed.

    ``peak_connections`` adds too: each process has its own connections; so do the node cache's
    counters (``"cache"``, present when any snapshot has them).
    """
    operations: Dict[str, dict] = {}
    peak_connections = 0
    cache: Optional[dict] = None
    for snapshot in snapshots:
        peak_connections += int(snapshot.get("peak_connections", 0))
        if "cache" in snapshot:
            cache = cache or empty_cache_counters()
            for counter in CACHE_COUNTERS:
                cache[counter] += int(snapshot["cache"].get(counter, 0))
        for name, counts in snapshot.get("operations", {}).items():
            merged = operations.setdefault(name, _empty_operation())
            for counter in COUNTERS:
                merged[counter] += int(counts.get(counter, 0))
            for histogram, _ in _LATENCIES:
                target = merged["histograms"][histogram]
                for bucket, count in counts.get("histograms", {}).get(histogram, {}).items():
                    # int(): a snapshot that went through JSON has its bucket numbers as strings.
                    target[int(bucket)] = target.get(int(bucket), 0) + int(count)
    for merged in operations.values():
        for histogram, name in _LATENCIES:
            merged[name] = _percentiles(merged["histograms"][histogram])
    merged_snapshot = {"operations": operations, "peak_connections": peak_connections}
    if cache is not None:
        merged_snapshot["cache"] = cache
    return merged_snapshot


def _as_snapshot(raw: Mapping) -> dict:
    """The native layout (histograms beside the counters) in the snapshot layout."""
    operations = {}
    for name, counts in raw["operations"].items():
        entry = {counter: counts[counter] for counter in COUNTERS}
        entry["histograms"] = {histogram: dict(counts[histogram]) for histogram, _ in _LATENCIES}
        operations[name] = entry
    return {"operations": operations, "peak_connections": raw["peak_connections"]}


def _empty_operation() -> dict:
    entry: dict = {counter: 0 for counter in COUNTERS}
    entry["histograms"] = {histogram: {} for histogram, _ in _LATENCIES}
    return entry


def _percentiles(histogram: Mapping[int, int]) -> Dict[str, Optional[float]]:
    """p50/p90/p99 in milliseconds (None before any request), each within 5% of the true value:
    a bucket is reported as its geometric middle."""
    total = sum(histogram.values())
    result: Dict[str, Optional[float]] = {}
    for label, fraction in _PERCENTILES:
        if total == 0:
            result[label] = None
            continue
        rank = fraction * total
        seen = 0
        for bucket in sorted(histogram):
            seen += histogram[bucket]
            if seen >= rank:
                break
        microseconds = 2 ** ((bucket + 0.5) / _BUCKETS_PER_DOUBLING)
        result[label] = round(microseconds / 1000.0, 3)
    return result
