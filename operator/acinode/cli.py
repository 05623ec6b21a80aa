"""The ``acinode`` command line: flags into settings and a dispatch to the subcommand; no logic of its own.

Each subcommand's module is imported only when that subcommand runs, so ``acinode emulator`` never loads the
operator's dependencies and ``acinode --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import acinode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acinode",
        description="Serverless virtual nodes for Kubernetes, backed by Azure Container Instances.",
    )
    parser.add_argument("--version", action="version", version=f"acinode {acinode.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the operator (virtual nodes and their pods)",
        description="Run the acinode operator against the cluster of the kubeconfig, or in-cluster.",
    )
    run.add_argument("--kubeconfig", help="kubeconfig to use (default: in-cluster, else $KUBECONFIG)")
    run.add_argument("--context", help="kubeconfig context to use (default: the current context)")
    run.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="the operator's namespace: where credential Secrets are found by default (env POD_NAMESPACE)",
    )
    run.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--log-format", choices=("plain", "json"), default="plain")
    run.add_argument("--verbose", action="store_true")
    run.add_argument(
        "--replica-id",
        default=os.environ.get("ACINODE_REPLICA_ID", ""),
        metavar="ID",
        help="this replica's identity in the VirtualNode ownership Leases, unique among the replicas (the pod "
        "name in a cluster; env ACINODE_REPLICA_ID; default: hostname-pid). Every replica works: each "
        "VirtualNode is served by the one holding its Lease",
    )
    # Accepted and ignored: manifests of earlier releases (Kopf peering, active/standby) still pass them.
    run.add_argument("--peering", help=argparse.SUPPRESS)
    run.add_argument("--priority", help=argparse.SUPPRESS)
    run.add_argument("--standalone", action="store_true", help=argparse.SUPPRESS)
    run.add_argument(
        "--kubelet-port",
        type=int,
        metavar="PORT",
        help="port of the virtual nodes' kubelet API (logs, exec, stats), advertised to the API server "
        "(default 10250, env ACINODE_NODE_KUBELET_PORT)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="port of the Prometheus metrics endpoint, 0 to disable (default 9090, env ACINODE_METRICS_PORT)",
    )

    from acinode.emulator import options as emulator_options

    emulator = sub.add_parser(
        "emulator",
        help="run the ARM-compatible Azure Container Instances emulator (local trials and tests)",
        description="Serve an ARM-compatible Azure Container Instances API on loopback, for local trials, demos "
        "and tests without an Azure subscription.",
    )
    emulator_options.add_arguments(emulator)

    gc = sub.add_parser(
        "gc",
        help="list (and with --delete, delete) container groups acinode left behind: their pod no longer exists",
        description="Find the container groups of a resource group that acinode created for this cluster (its "
        "tags) and whose pod no longer exists: left by an uninstall that removed the operator before its "
        "VirtualNodes, or by a VirtualNode whose finalizer was removed. A dry run unless --delete.",
    )
    gc.add_argument("--subscription-id", required=True, help="subscription of the container groups")
    gc.add_argument("--resource-group", required=True, help="resource group of the container groups")
    gc.add_argument("--delete", action="store_true", help="delete the groups found (default: only list them)")
    gc.add_argument("--kubeconfig", help="the cluster's kubeconfig (default: in-cluster, else $KUBECONFIG)")
    gc.add_argument("--context", help="kubeconfig context to use (default: the current context)")
    gc.add_argument(
        "--cluster-id",
        help="the cluster id the groups are tagged with (acinode.cluster-id: the kube-system namespace's uid); "
        "checked against the cluster's unless --cluster-gone",
    )
    gc.add_argument(
        "--cluster-gone",
        action="store_true",
        help="the cluster no longer exists: every group tagged with --cluster-id is left behind (no Kubernetes "
        "access needed)",
    )
    gc.add_argument(
        "--cloud", default="AzurePublicCloud", help="AzurePublicCloud, AzureUSGovernment, AzureChinaCloud"
    )
    gc.add_argument("--endpoint", help="a custom ARM endpoint (a private cloud, or the emulator)")
    gc.add_argument("--ca-bundle", metavar="FILE", help="PEM CAs to trust for the ARM endpoint")
    gc.add_argument(
        "--token-file",
        metavar="FILE",
        help="a bearer token for ARM (the emulator's); default: azure-identity's DefaultAzureCredential "
        "(az login, environment, workload or managed identity)",
    )
    gc.add_argument(
        "--client-id", help="client id of the managed identity to use with the default credential"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        from acinode import operator

        return operator.run(
            operator.RunOptions(
                kubeconfig=args.kubeconfig,
                context=args.context,
                namespace=args.namespace,
                liveness_endpoint=args.liveness,
                log_format=args.log_format,
                verbose=args.verbose,
                replica_id=args.replica_id,
                kubelet_port=args.kubelet_port,
                metrics_port=args.metrics_port,
            )
        )
    if args.command == "emulator":
        from acinode.emulator import app as emulator_app

        return emulator_app.run(args)
    if args.command == "gc":
        from acinode import gc as gc_command

        return gc_command.run(
            gc_command.GcOptions(
                subscription_id=args.subscription_id,
                resource_group=args.resource_group,
                delete=args.delete,
                kubeconfig=args.kubeconfig,
                context=args.context,
                cluster_id=args.cluster_id,
                cluster_gone=args.cluster_gone,
                cloud=args.cloud,
                endpoint=args.endpoint,
                ca_bundle=args.ca_bundle,
                token_file=args.token_file,
                client_id=args.client_id,
            ),
            sys.stdout,
        )
    parser.print_help(sys.stderr)
    return 2
