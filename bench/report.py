"""Rows from runs, and the markdown table and the PNG chart of them."""

import statistics
from pathlib import Path
from typing import Dict, List, Optional

from .plan import LABELS, MIB, Workload

COLUMNS = ["ours", "original", "boto3", "s3fs", "curl"]
# shown when a row of the run has them
EXTRA_COLUMNS = [
    "ours_prefix",
    "webdataset",
    "ours_nocache",
    "local_files",
    "webdataset_local",
    "ours_paged",
    "ours_objects",
    "wids",
    "baseline",
]


def value_of(workload: Workload, run: dict) -> Optional[float]:
    """The row's metric of one successful run."""
    r = run.get("result") or {}
    if workload.value_field == "rss_growth":
        return r["rss_growth"] / MIB if "rss_growth" in r else None
    if workload.value_field == "cpu_per_gib":
        return r["cpu_s"] / (r["bytes"] / 2**30) if r.get("cpu_s") is not None and r.get("bytes") else None
    if workload.value_field:  # a count the workload reports (W9n: "downloads")
        return r.get(workload.value_field)
    seconds = r.get("seconds")
    if not seconds:
        return None
    if workload.metric == "s":
        return seconds
    if workload.metric == "ms":
        return seconds * 1e3
    if workload.metric == "MB/s":
        return r["bytes"] / seconds / 1e6
    if workload.metric in ("objects/s", "reads/s", "keys/s", "samples/s"):
        return r["count"] / seconds
    return None


def _ratio_name(workload: Workload, name: str) -> str:
    if ":" in name:
        row, impl = name.split(":", 1)
        return f"{row} {LABELS.get(impl, impl)}"
    return workload.labels.get(name) or LABELS.get(name, name)


def rows(workloads: List[Workload], runs: List[dict]) -> List[dict]:
    out = []
    earlier: Dict[str, Optional[float]] = {}  # "ROW:impl" -> value, for rows compared with other rows
    for w in workloads:
        source = w.from_runs_of or w.id
        values: Dict[str, Optional[float]] = {}
        spread: Dict[str, List[float]] = {}
        details: Dict[str, float] = {}
        errors: Dict[str, str] = {}
        for impl in w.impls:
            mine = [r for r in runs if r["workload"] == source and r["impl"] == impl]
            vals = [v for v in (value_of(w, r) for r in mine if r["ok"]) if v is not None]
            errs = [r["error"] for r in mine if not r["ok"]]
            if errs:
                errors[impl] = errs[0]
            if not vals:
                values[impl] = None
                continue
            spread[impl] = vals
            if w.detail:
                shown = [r["result"][w.detail[0]] for r in mine if r["ok"] and w.detail[0] in r["result"]]
                if shown:
                    details[impl] = statistics.median(shown)
            # Memory: the worst run. Speed: the median run.
            values[impl] = max(vals) if w.value_field == "rss_growth" else statistics.median(vals)
        ratio = None
        if values.get("ours") is not None and values.get("original"):
            ratio = values["ours"] / values["original"]
        context = dict(earlier, **values)
        ratios = []
        for a, b in w.ratios:
            r = context[a] / context[b] if context.get(a) is not None and context.get(b) else None
            ratios.append(dict(name=f"{_ratio_name(w, a)} / {_ratio_name(w, b)}", value=r))
        if ratios:
            ratio = ratios[0]["value"]
        met = w.check(context) if w.check else None
        earlier.update({f"{w.id}:{impl}": v for impl, v in values.items()})
        if w.id == "W3c":  # ours must write correctly; a peer's failure is shown beside it
            oks = [r for r in runs if r["workload"] == "W3c" and r["impl"] == "ours"]
            met = (bool(oks) and all(r["ok"] and (r.get("result") or {}).get("verified") for r in oks)) if oks else None
        out.append(
            dict(
                id=w.id,
                title=w.title,
                metric=w.metric,
                values=values,
                runs=spread,
                ratio=ratio,
                target=w.target,
                met=met,
                note=w.note,
                errors=errors,
                lower_is_better=w.lower_is_better or w.value_field == "rss_growth",
                target_value=w.target_value,
                ratios=ratios,
                memory=w.value_field == "rss_growth",
                details={impl: f"{_fmt(v, w.detail[1])} {w.detail[1]}" for impl, v in details.items()},
            )
        )
    return out


def _fmt(v: Optional[float], metric: str) -> str:
    if v is None:
        return "–"
    if metric == "MiB":
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:,.1f}"
    return f"{v:,.2f}"


def markdown(table_rows: List[dict], meta: dict) -> str:
    lines = []
    mode = "QUICK run (`--quick`: smaller objects and counts, one repetition)" if meta["quick"] else "full run"
    lines.append("# Benchmarks: s3torchconnector (ours) beside the original 1.5.0, boto3, s3fs and curl\n")
    lines.append(
        f"{mode}; {meta['started']}; {meta['cpus']} CPUs (shared: load average {meta['load_before']} before, "
        f"{meta['load_after']} after; the client and nginx share these cores); ours {meta['ours']}, "
        f"original {meta['original']}, nginx {meta['nginx']}, torch {meta['torch']}. "
        f"Speeds in MB/s are 10^6 bytes/s; the ratio is ours/original.\n"
    )
    columns = COLUMNS + [c for c in EXTRA_COLUMNS if any(c in r["values"] for r in table_rows)]
    named = any(r.get("ratios") for r in table_rows)
    cols = (
        ["workload", "metric"]
        + [LABELS[c] for c in columns]
        + ["ratio (ours/original unless named)" if named else "ours/original", "target", "met"]
    )
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in table_rows:
        cells = [f"**{r['id']}** {r['title']}", r["metric"] + (" (lower is better)" if r["lower_is_better"] else "")]
        for c in columns:
            if c in r["errors"] and r["values"].get(c) is None:
                cells.append("error")
            elif c not in r["values"]:
                cells.append("")
            else:
                detail = r["details"].get(c)
                cells.append(_fmt(r["values"][c], r["metric"]) + (f" ({detail})" if detail else ""))
        if r.get("ratios"):
            first = r["ratios"][0]
            cells.append(("–" if first["value"] is None else f"{first['value']:.2f}x") + f" ({first['name']})")
        else:
            cells.append("–" if r["ratio"] is None else f"{r['ratio']:.2f}x")
        cells.append(r["target"])
        cells.append({True: "yes", False: "**no**", None: "–"}[r["met"]])
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Servers: " + meta.get("servers_note", ""))
    lines.append("")
    lines.append(
        f"Noise: the machine's 1-minute load average was {meta.get('load_runs', '?')} at the starts of the runs "
        "(other work shares these 2 cores), so single numbers can move by 2x between runs; compare ratios "
        "within one run, and prefer the full run's medians of 3."
    )
    lines.append("")
    for r in table_rows:
        if r["note"]:
            lines.append(f"- {r['id']}: {r['note']}")
    for r in table_rows:
        if r.get("ratios"):
            lines.append(
                f"- {r['id']} ratios: "
                + "; ".join(
                    f"{x['name']} = " + ("–" if x["value"] is None else f"{x['value']:.2f}x") for x in r["ratios"]
                )
            )
        if len(r["runs"].get("ours", [])) > 1 or any(len(v) > 1 for v in r["runs"].values()):
            lines.append(
                f"- {r['id']} every run: "
                + "; ".join(
                    f"{LABELS.get(impl, impl)} " + ", ".join(_fmt(v, r["metric"]) for v in vals)
                    for impl, vals in r["runs"].items()
                )
            )
    for r in table_rows:
        for impl, err in r["errors"].items():
            lines.append(f"- {r['id']} {LABELS.get(impl, impl)} failed: `{err.splitlines()[-1][:300] if err else '?'}`")
    for note in meta.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    return "\n".join(lines)


def chart(table_rows: List[dict], meta: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = [r for r in table_rows if not r["lower_is_better"] and r["values"].get("original")]
    memory = [r for r in table_rows if r.get("memory")]
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(15, 0.55 * max(len(speed), 4) + 2.5), gridspec_kw={"width_ratios": [3, 1.3]}
    )
    impls = ["ours", "boto3", "s3fs", "curl"]
    colors = {"ours": "#1f77b4", "original": "#7f7f7f", "boto3": "#ff7f0e", "s3fs": "#2ca02c", "curl": "#9467bd"}
    height = 0.8 / len(impls)
    labels = []
    for i, r in enumerate(speed):
        labels.append(f"{r['id']} ({r['metric']})")
        for j, impl in enumerate(impls):
            v = r["values"].get(impl)
            if v is None:
                continue
            rel = v / r["values"]["original"]
            y = i + (j - (len(impls) - 1) / 2) * height
            ax1.barh(y, rel, height=height, color=colors[impl])
            ax1.text(rel, y, f" {rel:.2f}x", va="center", fontsize=7)
        target = _target_factor(r["target"])
        if target:
            ax1.plot([target, target], [i - 0.45, i + 0.45], color="red", lw=1.5)
    ax1.axvline(1.0, color=colors["original"], lw=1.5, ls="--")
    ax1.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax1.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax1.xaxis.set_minor_formatter(NullFormatter())
    ax1.set_yticks(range(len(speed)))
    ax1.set_yticklabels(labels)
    ax1.invert_yaxis()
    ax1.set_xlabel("speed relative to the original 1.5.0 (dashed line = 1x; red tick = target)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i]) for i in impls]
    ax1.legend(
        handles + [plt.Line2D([], [], color="red")],
        [LABELS[i] for i in impls] + ["target"],
        loc="lower right",
        fontsize=8,
    )
    mode = "quick run" if meta["quick"] else "full run"
    ax1.set_title(f"Throughput vs the original s3torchconnector 1.5.0 ({mode}, {meta['cpus']} shared CPUs)")

    mem_impls = ["ours", "original", "boto3", "s3fs"]
    width = 0.8 / len(mem_impls)
    for i, r in enumerate(memory):
        for j, impl in enumerate(mem_impls):
            v = r["values"].get(impl)
            if v is None:
                continue
            x = i + (j - (len(mem_impls) - 1) / 2) * width
            ax2.bar(x, v, width=width, color=colors[impl])
            ax2.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
        if r.get("target_value"):
            ax2.plot([i - 0.45, i + 0.45], [r["target_value"]] * 2, color="red", lw=1.5)
    ax2.set_xticks(range(len(memory)))
    ax2.set_xticklabels([r["id"] for r in memory])
    ax2.set_ylabel("peak RSS growth, MiB (lower is better)")
    ax2.set_title("Memory")
    ax2.legend(
        [plt.Rectangle((0, 0), 1, 1, color=colors[i]) for i in mem_impls] + [plt.Line2D([], [], color="red")],
        [LABELS[i] for i in mem_impls] + ["target"],
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _target_factor(target: str) -> Optional[float]:
    import re

    m = re.search(r"≥ (\d+(?:\.\d+)?)x original", target)
    return float(m.group(1)) if m else None
