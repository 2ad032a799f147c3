"""`ksearch bench startup`: wall time of fresh processes, side by side in one run (issue 18's cold-start targets).

Each command runs `repeats` times in a new interpreter (after one unmeasured run, so the OS file cache is
warm as it is for a user's second command); the median is reported next to `python -c pass`. Where the
time goes: `python -X importtime` of the CLI and a profile are for digging; this reports the totals,
the ratios to `python -c pass`, and whether torch was imported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COLD_SEARCH_TARGET_S, COLD_ENCODE_TARGET_S, APP_FIRST_SEARCH_TARGET_S = 2.5, 2.0, 2.0
QUERY = "전세 보증금 돌려받는 방법"
_APP_PROBE = """
import sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
app = AppTest.from_file({app!r}, default_timeout=120)
app.run()
t1 = time.perf_counter()
app.text_input(key="search_query").set_value({query!r}).run()
assert not app.exception, [e.value for e in app.exception]
t2 = time.perf_counter()
print(f"{{t2 - t1:.3f}} {{t2 - t0:.3f}} {{'torch' in sys.modules}}")
"""


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return seconds


def _median(argv: list[str], env: dict[str, str], repeats: int) -> dict:
    _timed(argv, env)  # warm the file cache and the .pyc files
    times = [_timed(argv, env) for _ in range(repeats)]
    return {"command": " ".join(argv), "median_s": statistics.median(times), "runs_s": times}


def run_startup_bench(index: str, repeats: int = 3, app: bool = True, home: Path | None = None) -> dict:
    """Median wall seconds of `python -c pass`, cold `ksearch search`, cold `ksearch encode` (and the app's first
    search, via Streamlit's AppTest, when `app`), each in fresh processes against the prebuilt `index`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    if home is not None:
        env["KSEARCH_HOME"] = str(home)
    py = sys.executable
    rows = {
        "python -c pass": _median([py, "-c", "pass"], env, repeats),
        "ksearch search": _median([py, "-m", "ksearch.cli", "search", QUERY, "--index", index], env, repeats),
        "ksearch encode": _median([py, "-m", "ksearch.cli", "encode", QUERY], env, repeats),
    }
    torch_used = subprocess.run(
        [py, "-c", "import sys; from retrieval.opening import load_encoder; from retrieval.settings import get_settings; "
                   "e = load_encoder(get_settings()); e.encode_queries(['보증금']); print(e.backend, 'torch' in sys.modules)"],
        env=env, capture_output=True, text=True, timeout=300).stdout.split()
    if app:
        app_path = str(Path(__file__).resolve().parents[2] / "search_ui" / "app.py")
        code = _APP_PROBE.format(app=app_path, query=QUERY)
        times, totals = [], []
        for i in range(repeats + 1):
            out = subprocess.run([py, "-c", code], env={**env, "KSEARCH_INDEX": index}, capture_output=True, text=True,
                                 timeout=300)
            if out.returncode != 0 or not out.stdout.strip():
                times = None
                rows["app first search"] = {"error": out.stderr.strip()[-500:]}
                break
            if i:
                first, total, _ = out.stdout.split()
                times.append(float(first))
                totals.append(float(total))
        if times:
            rows["app first search"] = {"command": "streamlit AppTest: the first query typed into the loaded page",
                                        "median_s": statistics.median(times), "runs_s": times}
            rows["app start + first search"] = {"command": "streamlit AppTest from a fresh process: import, page, query",
                                                "median_s": statistics.median(totals), "runs_s": totals}
    base = rows["python -c pass"]["median_s"]
    for row in rows.values():
        if "median_s" in row:
            row["x_python"] = row["median_s"] / base
    targets = {"ksearch search": COLD_SEARCH_TARGET_S, "ksearch encode": COLD_ENCODE_TARGET_S,
               "app first search": APP_FIRST_SEARCH_TARGET_S}
    for name, target in targets.items():
        if name in rows and "median_s" in rows[name]:
            rows[name]["target_s"] = target
            rows[name]["meets_target"] = rows[name]["median_s"] <= target
    return {"benchmark": "startup", "repeats": repeats, "query": QUERY, "index": index,
            "encoder_backend": torch_used[0] if torch_used else None,
            "torch_imported": torch_used[1] == "True" if len(torch_used) > 1 else None,
            "load_average_at_start": os.getloadavg()[0], "hardware": _hardware(), "rows": rows}


def _hardware() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"
