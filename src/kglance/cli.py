"""The ``kglance`` command line; subcommands are added as the components land."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from kglance import __version__, commands, render
from kglance.sidecar import settings as serve_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kglance", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kglance {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(subcommands)  # put, get, stat, rm, backends
    add_serve_command(subcommands)
    render.register(subcommands)  # PyYAML and the renderer are imported when it runs
    add_operator_command(subcommands)
    return parser


def add_serve_command(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``kglance serve``: run the sidecar (the server is imported only when it runs)."""
    parser = subcommands.add_parser(
        "serve",
        help="run the image sidecar on a Unix socket",
        description="Serve images over a Unix socket. Without --config: one filesystem "
        "backend under ./kglance-data, socket ./kglance.sock.",
    )
    serve_settings.add_arguments(parser)
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from kglance.sidecar import server

    return server.run(serve_settings.options_from_args(args))


def add_operator_command(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``kglance operator``: run the Kubernetes operator (kopf is imported only when it runs)."""
    parser = subcommands.add_parser(
        "operator",
        help="run the Kubernetes operator",
        description="Run the kglance operator. Settings come from KGLANCE_* environment "
        "variables (see kglance.operator.settings); the options below override them.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="serve this namespace (repeatable; default: KGLANCE_NAMESPACES, else all)",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="run without peering (a single replica)"
    )
    parser.set_defaults(run=_operator)


def _operator(args: argparse.Namespace) -> int:
    from kglance.operator import main as operator_main
    from kglance.operator.settings import OperatorSettings

    settings = OperatorSettings.from_env()
    overrides: dict[str, object] = {}
    if args.namespaces:
        overrides["namespaces"] = tuple(args.namespaces)
    if args.standalone:
        overrides["standalone"] = True
    return operator_main.run(settings.model_copy(update=overrides))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    run: Callable[[argparse.Namespace], int] = args.run  # each subcommand sets it
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
