"""The adaptation part of `docs/benchmarks.md`, from `bench/results/adapt.json` (`ksearch bench adapt`)."""

from __future__ import annotations

ADAPT_TARGET_PASSAGES = 5_000  # issue #15: the default `ksearch adapt` fits a corpus of this size ...
ADAPT_TARGET_MINUTES = 30.0  # ... in this many minutes on 2 CPU cores, end to end


def target_rows(a: dict) -> list[tuple[str, bool, str]]:
    """(target, met, figure) for the Targets table; only a run at the target's size, on CPU, counts."""
    if a.get("passages", 0) < ADAPT_TARGET_PASSAGES or a.get("device") != "cpu" or a.get("minutes_given") is not None:
        return []
    minutes = a["total_seconds"] / 60
    return [(f"`ksearch adapt` (default budget) on {ADAPT_TARGET_PASSAGES:,} passages <= {ADAPT_TARGET_MINUTES:g} min "
             f"on {a['cpu_count']} CPU cores", minutes <= ADAPT_TARGET_MINUTES,
             f"{minutes:.1f} min ({a['passages']:,} passages, training {a['minutes_budget']:.1f} min of it)")]


def adapt_section(a: dict) -> list[str]:
    """The phases of one adaptation run, timed, with what it trained."""
    load = a.get("load_average_at_start")
    given = a.get("minutes_given")
    command = " ".join(["ksearch bench adapt", f"--passages {a['requested_passages']}",
                        *([f"--minutes {given:g}"] if given is not None else []), *(f"--corpus {c}" for c in a["corpus"])])
    lines = [f"## Adaptation (`ksearch adapt`) on {a['passages']:,} passages", "",
             f"`{command}` (results in `bench/results/adapt.json`): the first documents of "
             f"{', '.join(f'`{c}`' for c in a['corpus'])} that make {a['passages']:,} passages ({a['documents']:,} "
             f"documents), adapted from `{a['model']}` on {a['device']} ({a['torch_threads']} torch threads) with a "
             f"{a['minutes_budget']:.1f}-minute training budget"
             + (" (the default: the rest of a 30-minute run)" if given is None else "")
             + (f"; load average {load:.1f} at the start and {a['load_average_at_end']:.1f} at the end" if load is not None
                else "") + ".", "",
             "| phase | seconds |", "| --- | ---: |",
             *[f"| {phase} | {seconds:.1f} |" for phase, seconds in a["phases_seconds"].items()],
             f"| **total** | **{a['total_seconds']:.1f}** ({a['total_seconds'] / 60:.1f} min) |", "",
             f"{_counts(a['pairs'])} pseudo-query pairs, {_counts(a['negatives'])} mined negatives; {a['steps']} of "
             f"{a['planned_steps']} planned steps ({a['seconds_per_step']} s/step"
             f"{', stopped by the budget' if a['stopped_by_budget'] else ''}); loss {a['first_loss']:.3f} -> "
             f"{a['last_loss']:.3f}; model folder {a['model_folder_mb']:.0f} MB."]
    if load is not None and max(load, a["load_average_at_end"]) > a["cpu_count"]:
        lines += ["", "The load average was above the core count: other work shared the CPU, so preparation took "
                      "longer, and (with the default budget) training got fewer steps, than on an idle machine."]
    return lines


def _counts(by_kind: dict[str, int]) -> str:
    """`1,234 (title 100, cloze 1,134)`."""
    return f"{sum(by_kind.values()):,} ({', '.join(f'{kind} {n:,}' for kind, n in by_kind.items())})"
