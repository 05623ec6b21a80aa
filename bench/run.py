"""`make bench`: run every benchmark, print one JSON summary and keep it in bench/results/.

Each benchmark is its own script printing one JSON object; they run one after another (the machine has two
cores), each bounded in time. Arguments after `--` are not used; set sizes with the environment:
ACINODE_BENCH_PODS (100), ACINODE_BENCH_UNRELATED (2000), ACINODE_BENCH_NODES (50), ACINODE_BENCH_SECONDS (300).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ENV = os.environ


def benchmarks() -> list[tuple[str, list[str]]]:
    return [
        ("emulator_rate", ["emulator_rate.py"]),
        (
            "pod_lifecycle",
            [
                "pod_lifecycle.py",
                "--pods",
                ENV.get("ACINODE_BENCH_PODS", "100"),
                "--unrelated",
                ENV.get("ACINODE_BENCH_UNRELATED", "2000"),
            ],
        ),
        (
            "many_nodes",
            [
                "many_nodes.py",
                "--nodes",
                ENV.get("ACINODE_BENCH_NODES", "50"),
                "--seconds",
                ENV.get("ACINODE_BENCH_SECONDS", "300"),
            ],
        ),
    ]


def main() -> int:
    summary: dict[str, object] = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    failed = False
    for name, args in benchmarks():
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            failed = True
            summary[name] = {"error": (result.stderr or result.stdout).strip().splitlines()[-5:]}
        else:
            summary[name] = json.loads(result.stdout)
        print(f"[bench] {name} done in {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
    output = json.dumps(summary, indent=2)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(output + "\n")
    print(output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
