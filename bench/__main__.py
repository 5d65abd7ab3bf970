"""`make bench`: runs every benchmark module in bench/ and prints its figures.

Each module (bench/<name>.py, runnable as `python -m bench.<name>`) starts what it needs on
the real broker and database, in a namespace of its own, and prints figures and ratios.
Nothing here passes or fails on speed; a module that crashes is reported and the rest run.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# Not benchmarks: the seed loads a store (bench.national runs it), memorydb is the seed's tool.
NOT_BENCHES = {"seed", "memorydb"}


def main() -> int:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:" + os.environ.get("LINDUNGI_KAFKA_PORT", "9092"),
        "MONGODB_URI": "mongodb://127.0.0.1:" + os.environ.get("LINDUNGI_MONGO_PORT", "27017") + "/",
        **os.environ,
        "LINDUNGI_LOG_LEVEL": "WARNING",
    }
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(HERE)])
        if not m.name.startswith("_") and m.name not in NOT_BENCHES
    )
    only = sys.argv[1:]
    failed = []
    for name in names:
        if only and name not in only:
            continue
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], env=env).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that crashed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
