"""The cold-start part of `docs/benchmarks.md`, from `bench/results/startup.json` (`ksearch bench startup`)."""

from __future__ import annotations


def target_rows(s: dict) -> list[tuple[str, bool, str]]:
    """(target, met, figure) for the Targets table: one row per command that has a target."""
    return [(f"cold `{name}` <= {r['target_s']:g} s", bool(r["meets_target"]), f"{r['median_s']:.2f} s")
            for name, r in s["rows"].items() if "target_s" in r and "median_s" in r]


def startup_section(s: dict) -> list[str]:
    """A table of median wall seconds per fresh process, next to `python -c pass`."""
    torch = {True: "imported", False: "not imported", None: "unknown"}[s.get("torch_imported")]
    lines = [f"## Cold start (median of {s['repeats']} fresh processes)", "",
             f"`ksearch bench startup --index {s['index']}` (results in `bench/results/startup.json`; load average "
             f"{s['load_average_at_start']:.1f} at start; encoder backend {s.get('encoder_backend')}, torch {torch}). "
             "Each command runs once unmeasured first, so the OS file cache is warm as for a user's second command.", "",
             "| command | median s | x `python -c pass` | target s | result |", "| --- | ---: | ---: | ---: | --- |"]
    for name, r in s["rows"].items():
        if "median_s" not in r:
            lines.append(f"| {name} | - | - | - | error: {r.get('error', '')[:80]} |")
            continue
        met = {True: "met", False: "not met"}.get(r.get("meets_target"), "-")
        lines.append(f"| {name} | {r['median_s']:.2f} | {r['x_python']:.1f} | {r.get('target_s', '-')} | {met} |")
    return lines
