"""Check recbench's peak RSS against `/usr/bin/time -v` on the same jobs.

Runs a small sweep, then re-runs each of its jobs alone under `/usr/bin/time -v python -m bench.measure.worker JOB.json`
and prints three numbers per job: the peak RSS recorded by the sweep (its own spawned process), the one recorded
by the re-run, and GNU time's "Maximum resident set size" of that re-run (the same kernel high-water mark, read
from outside). For ONNX Runtime jobs it also runs a native script doing the same load + loop (same artifact, input
batches, threads and duration) under GNU time, bare and with scipy.stats imported (the harness's statistics, the
bulk of a job process's baseline), and prints the sweep's peak over each. Extra arguments go to `recbench run`
(default: --quick --backends onnxruntime,openvino,torch-cpu --batch-sizes 64).

    python scripts/check_peak_rss.py [recbench run flags...]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TIME = "/usr/bin/time"
NATIVE_ORT = """
import importlib, sys, time
import numpy as np
import onnxruntime as ort
model, pool_path, threads, seconds, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
for name in extra:
    importlib.import_module(name)
pool = np.load(pool_path)
feeds = {}
for key in pool.files:
    i, name = key.split("/", 1)
    feeds.setdefault(i, {})[name] = pool[key]
so = ort.SessionOptions()
so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
batches, n, end = list(feeds.values()), 0, time.perf_counter() + seconds
while time.perf_counter() < end:
    session.run(None, batches[n % len(batches)])
    n += 1
"""


def gnu_time_max_rss(stderr: str) -> int:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if not m:
        sys.exit(f"no 'Maximum resident set size' in {TIME} -v output: is GNU time installed (apt-get install time)?")
    return int(m.group(1)) * 1024


def native_ort_peak(rec: dict, spec: Path, extra: list[str]) -> int:
    """GNU time's peak RSS of a plain ONNX Runtime script doing the job's load + loop."""
    inputs = json.loads(spec.read_text())["artifacts"]["input_pool"]
    res = subprocess.run([TIME, "-v", sys.executable, "-c", NATIVE_ORT, rec["artifact"], inputs,
                          str(rec["threads"]), str(rec["duration_s"]), *extra], capture_output=True, text=True,
                         check=True)
    return gnu_time_max_rss(res.stderr)


def main(args: list[str]) -> None:
    if not Path(TIME).exists():
        sys.exit(f"{TIME} missing: apt-get install time")
    flags = args or ["--quick", "--backends", "onnxruntime,openvino,torch-cpu", "--batch-sizes", "64"]
    out = Path(tempfile.mkdtemp(prefix="recbench-rss-"))
    subprocess.run([sys.executable, "-m", "bench", "run", *flags, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    run_dir = next(out.iterdir())
    print(f"{'job':<48} {'sweep MiB':>10} {'re-run MiB':>11} {'time -v MiB':>12} {'re-run/time':>12} "
          f"{'native MiB':>11} {'sweep/native':>13} {'+scipy MiB':>11} {'sweep/+scipy':>13}")
    for line in (run_dir / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] != "ok":
            continue
        spec = run_dir / "logs" / f"{rec['job_id']}.job.json"
        res = subprocess.run([TIME, "-v", sys.executable, "-m", "bench.measure.worker", str(spec)], capture_output=True,
                             text=True, check=True)
        rerun = json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_bytes"]
        gnu = gnu_time_max_rss(res.stderr)
        native = ""
        if rec["backend"] == "onnxruntime":
            bare, stats = (native_ort_peak(rec, spec, x) for x in ([], ["scipy.stats"]))
            native = (f" {bare / 2**20:>11.1f} {rec['peak_rss_bytes'] / bare:>13.2f} {stats / 2**20:>11.1f} "
                      f"{rec['peak_rss_bytes'] / stats:>13.2f}")
        print(f"{rec['job_id']:<48} {rec['peak_rss_bytes'] / 2**20:>10.1f} {rerun / 2**20:>11.1f} "
              f"{gnu / 2**20:>12.1f} {rerun / gnu:>12.3f}{native}")


if __name__ == "__main__":
    main(sys.argv[1:])
