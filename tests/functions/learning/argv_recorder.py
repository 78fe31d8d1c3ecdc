"""A real entry point for launcher tests: ``python -m tests.functions.learning.argv_recorder ...``.

Writes its arguments and working directory as JSON to ``$ARGV_RECORD``; when ``$ARGV_RECORD_HOLD``
names a file, keeps running until that file exists (a training job that is still busy) or a minute
passes. Appends, so a test can tell how many processes were started.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    record = Path(os.environ["ARGV_RECORD"])
    line = json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "pid": os.getpid()})
    with record.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    hold = os.environ.get("ARGV_RECORD_HOLD")
    if hold:
        deadline = time.monotonic() + 60
        while not Path(hold).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
