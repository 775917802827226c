"""What the fault-injection tests (pytest -m reliability) share: how many cycles to run and a
summary of the per-cycle timings they print (pytest -s shows it; docs/reliability.md keeps the
figures of a full run).

CI runs every reliability test with a few cycles; ``BK_RELIABILITY_FULL=1`` (what
scripts/reliability.sh sets) runs the full count.
"""

from __future__ import annotations

import math
import os
import statistics

QUICK_CYCLES = 3
FULL_CYCLES = 20


def full_run() -> bool:
    return os.environ.get("BK_RELIABILITY_FULL", "") not in ("", "0", "false")


def cycles(quick: int = QUICK_CYCLES, full: int = FULL_CYCLES) -> int:
    return full if full_run() else quick


def summarise(
    title: str, figures: dict[str, list[float]], counts: dict[str, list[int]] | None = None
) -> str:
    """One line per figure (seconds) or count: n, min, median, p95 (nearest rank), max."""
    lines = [f"\n== {title} ({'full' if full_run() else 'quick'} run) =="]
    rows = [(name, values, "s") for name, values in figures.items()]
    rows += [(name, values, "") for name, values in (counts or {}).items()]
    for name, values, unit in rows:
        if not values:
            lines.append(f"{name:<34} (none)")
            continue
        ordered = sorted(values)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        fmt = ".2f" if unit else "g"
        lines.append(
            f"{name:<36} n={len(values):<3} min={ordered[0]:{fmt}}{unit} "
            f"median={statistics.median(ordered):{fmt}}{unit} p95={p95:{fmt}}{unit} "
            f"max={ordered[-1]:{fmt}}{unit} total={sum(values):{fmt}}{unit}"
        )
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        lines.append(f"load average (1/5/15 min): {load}; cores: {os.cpu_count()}")
    except OSError:
        pass
    text = "\n".join(lines)
    print(text)
    return text
