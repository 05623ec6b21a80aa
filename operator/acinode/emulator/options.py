"""The emulator's command-line flags (kept apart from ``app`` so that building the parser stays cheap).

Only the standard library is imported here: ``acinode --help`` builds this parser on every start.
Defaults mirror ACI's documented limits and quotas (docs/emulator.md lists them).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: pick a free one)")
    parser.add_argument(
        "--state-dir", required=True, help="folder for ca.pem, endpoint.json and the persisted state"
    )
    parser.add_argument("--plain-http", action="store_true", help="serve plain HTTP (debugging only)")
    parser.add_argument("--token", default=None, help="require exactly this bearer token (default: any)")
    parser.add_argument(
        "--subscription-id",
        default="00000000-0000-0000-0000-000000000000",
        help="subscription written to endpoint.json for clients",
    )
    parser.add_argument(
        "--strict-subscription",
        action="store_true",
        help="answer SubscriptionNotFound for any subscription but --subscription-id",
    )
    parser.add_argument(
        "--subnet",
        action="append",
        metavar="SUBNET_ID",
        help="a subnet that exists and is delegated to ACI (repeatable); others are SubnetNotFound, as in Azure",
    )
    parser.add_argument(
        "--any-subnet",
        action="store_true",
        help="take every well-formed subnet id to exist and be delegated (no SubnetNotFound)",
    )
    parser.add_argument(
        "--provisioning-delay", type=float, default=0.5, help="seconds a create stays Pending"
    )
    parser.add_argument("--pull-delay", type=float, default=0.0, help="seconds an image pull takes")
    parser.add_argument(
        "--backoff-base", type=float, default=1.0, help="first restart back-off in seconds (doubles)"
    )
    parser.add_argument("--backoff-max", type=float, default=30.0, help="longest restart back-off in seconds")
    parser.add_argument(
        "--metrics-lag", type=float, default=0.0, help="seconds Azure Monitor's metrics lag the containers"
    )
    parser.add_argument(
        "--persist", action="store_true", help="keep groups in DIR/state.json across restarts"
    )
    parser.add_argument(
        "--ip-range", default="127.240.0.0/16", help="loopback range for container-group IPs (in 127/8)"
    )
    parser.add_argument(
        "--no-network", action="store_true", help="assign IPs but do not listen on them (no HTTP stand-in)"
    )
    parser.add_argument("--page-size", type=int, default=100, help="container groups per list page")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log verbosity"
    )
    limits = parser.add_argument_group("per-group limits")
    limits.add_argument("--max-cpu", type=float, default=4.0, help="CPU cores one group may request")
    limits.add_argument("--max-memory", type=float, default=16.0, help="memory (GB) one group may request")
    quota = parser.add_argument_group("per-region quotas (per subscription)")
    quota.add_argument("--quota-container-groups", type=int, default=100, help="container groups")
    quota.add_argument("--quota-cores", type=int, default=100, help="StandardCores")
    quota.add_argument("--quota-spot-cores", type=int, default=100, help="StandardSpotCores")
    quota.add_argument("--quota-gpu-cores", type=int, default=0, help="cores of GPU groups (V100 etc.)")
    throttle = parser.add_argument_group("throttling (429 + Retry-After)")
    throttle.add_argument("--no-throttle", action="store_true", help="never answer 429")
    throttle.add_argument("--read-burst", type=int, default=250, help="ARM read token bucket size")
    throttle.add_argument("--read-rate", type=float, default=25.0, help="ARM read tokens per second")
    throttle.add_argument("--write-burst", type=int, default=200, help="ARM write token bucket size")
    throttle.add_argument("--write-rate", type=float, default=10.0, help="ARM write tokens per second")
    throttle.add_argument("--creates-per-5m", type=int, default=100, help="ACI creates per 5 minutes")
    throttle.add_argument("--creates-per-hour", type=int, default=300, help="ACI creates per hour")
    throttle.add_argument("--deletes-per-5m", type=int, default=100, help="ACI deletes per 5 minutes")
    throttle.add_argument("--deletes-per-hour", type=int, default=300, help="ACI deletes per hour")
