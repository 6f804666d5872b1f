"""Library output during a variant build (Python, warnings, C/C++ writes to fd 1/2) lands in the job's log file."""

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import logging, os, sys, warnings
from pathlib import Path
from bench.run.progress import output_to

lib = logging.getLogger("lib")
lib.addHandler(logging.StreamHandler(sys.stdout))  # like NNCF's logger: a handler bound at import time
with output_to(Path(sys.argv[1])):
    print("python print")
    os.write(1, b"c++ on fd 1\\n")
    os.write(2, b"c++ on fd 2\\n")
    warnings.warn("a torch-style warning")
    lib.warning("nncf-style log line")
print("after")
"""


def test_everything_written_inside_goes_to_the_log_and_the_terminal_comes_back(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("job 000: header\n")
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    text = log.read_text()
    for line in ("job 000: header", "python print", "c++ on fd 1", "c++ on fd 2", "a torch-style warning",
                 "nncf-style log line"):
        assert line in text
    assert res.stdout == "after\n" and res.stderr == ""
