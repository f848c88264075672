"""Run a piece of work in a fresh Python process; return its wall time and peak memory.

Each measurement is a separate process so that imports are paid (a user's command pays
them too) and peak RSS is that of the work alone (``getrusage`` in the child, at exit).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

_WRAPPER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
status = 0
try:
{body}
except SystemExit as exc:
    status = exc.code or 0
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print("@@MEASURE@@" + json.dumps({{"inner_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mib": ru.ru_maxrss / 1024, "status": status}}))
"""


def measure(body: str, label: str, env: dict | None = None) -> dict:
    """Run ``body`` (Python statements) in a child; dict with process wall ``wall_s``,
    in-process ``inner_s`` (after interpreter start-up), CPU time ``cpu_s`` (user + system,
    all threads: on a machine shared with other jobs it moves less than wall time) and
    ``peak_rss_mib``; also the child's ``stdout`` (for timings it reports itself)."""
    code = _WRAPPER.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@MEASURE@@")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"{label} failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len("@@MEASURE@@") :])
    if result["status"] not in (0, None):
        sys.stderr.write(proc.stderr[-3000:])
        raise RuntimeError(f"{label} exited with {result['status']}")
    result.update(wall_s=wall, label=label, stderr=proc.stderr, stdout=proc.stdout)
    print(
        f"  {label:<34s} {wall:8.2f} s process  {result['inner_s']:8.2f} s in-process  "
        f"{result['cpu_s']:8.2f} s CPU  peak RSS {result['peak_rss_mib']:8.0f} MiB",
        flush=True,
    )
    return result
