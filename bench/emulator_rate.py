"""How many simple ARM GETs per second the emulator answers on loopback (prints one JSON object).

Starts ``acinode emulator`` as its own process (TLS on, throttling off, no stand-in listeners), creates one
container group, then runs ``--concurrency`` keep-alive HTTPS clients doing ``GET`` on that group for
``--seconds`` seconds. Bounded: the run ends after the given duration whatever happens.

    .venv/bin/python bench/emulator_rate.py --seconds 5 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

SUB = "00000000-0000-0000-0000-00000000bee0"
GROUP_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/bench/providers/Microsoft.ContainerInstance/containerGroups/web"
)
API = "?api-version=2023-05-01"
BODY = {
    "location": "westeurope",
    "properties": {
        "osType": "Linux",
        "containers": [
            {
                "name": "app",
                "properties": {
                    "image": "mcr.microsoft.com/azuredocs/aci-helloworld:latest",
                    "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5}},
                },
            }
        ],
    },
}


def start_emulator(state_dir: Path, plain_http: bool) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    command = [sys.executable, "-m", "acinode", "emulator", "--state-dir", str(state_dir), "--no-throttle"]
    command += ["--no-network", "--provisioning-delay", "0", "--log-level", "warning"]
    if plain_http:
        command.append("--plain-http")
    process = subprocess.Popen(command)
    endpoint = state_dir / "endpoint.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if endpoint.exists():
            try:
                return process, json.loads(endpoint.read_text())
            except ValueError:
                pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit("emulator did not start within 30 s")


async def measure(info: dict[str, Any], seconds: float, concurrency: int) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=info["ca_file"]) if info["ca_file"] else None
    headers = {"Authorization": f"Bearer {info['token']}"}
    url = info["url"] + GROUP_PATH + API
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context if context else False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async with session.put(url, json=BODY) as response:
            assert response.status in (200, 201), await response.text()
        counts = {"ok": 0, "errors": 0}
        stop_at = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < stop_at:
                async with session.get(url) as response:
                    await response.read()
                    counts["ok" if response.status == 200 else "errors"] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return {
        "benchmark": "emulator_get_rate",
        "scheme": info["url"].split(":", 1)[0],
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests": counts["ok"],
        "errors": counts["errors"],
        "requests_per_second": round(counts["ok"] / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--plain-http", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, info = start_emulator(Path(tmp), args.plain_http)
        try:
            result = asyncio.run(measure(info, args.seconds, args.concurrency))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
