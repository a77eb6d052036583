"""``kglance render``: the sidecar configuration the operator would write, computed offline.

Reads StoreBackends, Secrets and ConfigMaps from YAML files (multi-document, ``kind: List``,
or directories of them), renders each namespace with the operator's own
``kglance.operator.rendering.render_namespace``, and prints the result or writes it to a
directory. It lets someone check a set of manifests, or produce a configuration for a
sidecar outside Kubernetes, before anything reaches a cluster. The operator is not needed,
only PyYAML (the ``operator`` extra), imported when the command runs.

Without ``-o`` the conf is printed, then each companion file; the content of those that come
from Secrets is shown as ``***`` unless ``--show-secrets`` is given. Problems (a missing
Secret key, an invalid spec, ...) go to stderr, one line per backend, and the exit status is
1; the backends without problems are still rendered. Exit status 2 means bad input.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from kglance.operator import names

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
REDACTED = "***"
DEFAULT_NAMESPACE = "default"
_YAML_SUFFIXES = (".yaml", ".yml", ".json")


class InputError(Exception):
    """The input files cannot be read as Kubernetes objects."""


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "render",
        help="render StoreBackend manifests into the sidecar configuration, offline",
        description="Render StoreBackends (with the Secrets and ConfigMaps they refer to) "
        "from YAML files into the glance_store configuration the operator writes for "
        "each namespace's sidecars.",
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="extend",
        nargs="+",
        required=True,
        dest="files",
        metavar="FILE",
        help="YAML file or directory of them ('-' for stdin); repeatable",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        help="render only this namespace (objects without one are in it; default: "
        f"every namespace found, objects without one in {DEFAULT_NAMESPACE!r})",
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write the files into DIR (DIR/<namespace>/ when there are several namespaces)",
    )
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="print the content of files that come from Secrets instead of ***",
    )
    parser.add_argument(
        "--volume-root",
        default=names.SIDECAR_VOLUME_ROOT,
        help="where file backends' volumes are mounted (default: %(default)s)",
    )
    parser.add_argument(
        "--config-dir",
        default=names.SIDECAR_CONFIG_DIR,
        help="where the rendered files are mounted, for options that take a path "
        "(default: %(default)s)",
    )
    parser.set_defaults(run=run)


# ------------------------------------------------------------------ reading


def _paths(arguments: Iterable[str]) -> Iterator[str]:
    for argument in arguments:
        if argument != "-" and os.path.isdir(argument):
            for entry in sorted(os.listdir(argument)):
                if entry.endswith(_YAML_SUFFIXES):
                    yield os.path.join(argument, entry)
        else:
            yield argument


def _documents(arguments: Iterable[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    import yaml

    for path in _paths(arguments):
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not YAML: {exc}") from exc
        for document in loaded:
            if document is None:
                continue
            if not isinstance(document, Mapping):
                raise InputError(f"{path}: a document is not a Kubernetes object")
            if document.get("kind") == "List":
                for item in document.get("items") or ():
                    if isinstance(item, Mapping):
                        yield path, item
            else:
                yield path, document


def _secret_data(path: str, document: Mapping[str, Any]) -> dict[str, bytes]:
    name = document["metadata"].get("name")
    data: dict[str, bytes] = {}
    for key, value in (document.get("data") or {}).items():
        try:
            data[str(key)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{path}: Secret {name} key {key}: data is not base64") from None
    for key, value in (document.get("stringData") or {}).items():
        data[str(key)] = str(value).encode()
    return data


def _config_map_data(path: str, document: Mapping[str, Any]) -> dict[str, str]:
    data = {str(k): str(v) for k, v in (document.get("data") or {}).items()}
    for key, value in (document.get("binaryData") or {}).items():
        try:
            data[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, ValueError):
            name = document["metadata"].get("name")
            raise InputError(f"{path}: ConfigMap {name} key {key}: not base64 text") from None
    return data


class Namespace:
    """The objects of one namespace, as the operator would read them from the API."""

    def __init__(self) -> None:
        self.backends: list[Mapping[str, Any]] = []
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.config_maps: dict[str, dict[str, str]] = {}


def collect(
    documents: Iterable[tuple[str, Mapping[str, Any]]], *, namespace: str | None
) -> dict[str, Namespace]:
    """The namespaces' objects; with ``namespace``, that one only."""
    found: dict[str, Namespace] = {}
    for path, document in documents:
        kind, api_version = document.get("kind"), document.get("apiVersion")
        metadata = document.get("metadata")
        if not isinstance(metadata, Mapping) or not metadata.get("name"):
            raise InputError(f"{path}: a {kind or 'document'} without metadata.name")
        where = str(metadata.get("namespace") or namespace or DEFAULT_NAMESPACE)
        if namespace is not None and where != namespace:
            continue
        objects = found.setdefault(where, Namespace())
        name = str(metadata["name"])
        if kind == names.STOREBACKEND_KIND and api_version == names.API_VERSION:
            objects.backends.append({**document, "metadata": {**metadata, "namespace": where}})
        elif kind == "Secret" and api_version == "v1":
            objects.secrets[name] = _secret_data(path, document)
        elif kind == "ConfigMap" and api_version == "v1":
            objects.config_maps[name] = _config_map_data(path, document)
    return {ns: objects for ns, objects in sorted(found.items()) if objects.backends}


# ------------------------------------------------------------------ output


def _print_files(
    files: Mapping[str, bytes], *, secret_files: Iterable[str], show_secrets: bool, out: TextIO
) -> None:
    out.write(files[names.CONFIG_KEY].decode())
    hidden = set(secret_files)
    for name, content in files.items():
        if name == names.CONFIG_KEY:
            continue
        out.write(f"\n# ---- {name}\n")
        if name in hidden and not show_secrets:
            out.write(REDACTED + "\n")
        else:
            text = content.decode(errors="replace")
            out.write(text if text.endswith("\n") else text + "\n")


def _write_files(directory: Path, files: Mapping[str, bytes]) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, content in files.items():
        target = directory / name
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as f:
            f.write(content)


def run(args: argparse.Namespace) -> int:
    try:
        import yaml  # noqa: F401  (the operator extra)
    except ImportError:
        print(
            "kglance render needs PyYAML: install it with pip install 'kglance[operator]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from kglance.operator import rendering

    try:
        namespaces = collect(_documents(args.files), namespace=args.namespace)
    except InputError as exc:
        print(f"kglance render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not namespaces:
        where = f" in namespace {args.namespace}" if args.namespace else ""
        print(f"kglance render: no StoreBackend{where} in the given files", file=sys.stderr)
        return EXIT_USAGE
    status = 0
    for index, (namespace, objects) in enumerate(namespaces.items()):
        result = rendering.render_namespace(
            objects.backends,
            secrets=objects.secrets,
            config_maps=objects.config_maps,
            volume_root=args.volume_root,
            config_dir=args.config_dir,
        )
        for backend, problems in sorted(result.problems.items()):
            for problem in problems:
                print(
                    f"{namespace}/{backend}: {problem.condition} {problem.reason}: "
                    f"{problem.message}",
                    file=sys.stderr,
                )
            status = EXIT_PROBLEMS
        if not result.files:
            print(f"{namespace}: no backend could be rendered", file=sys.stderr)
            continue
        if args.output_dir is not None:
            directory = args.output_dir if len(namespaces) == 1 else args.output_dir / namespace
            _write_files(directory, result.files)
            print(f"{namespace}: wrote {len(result.files)} files to {directory}", file=sys.stderr)
            continue
        if len(namespaces) > 1:
            sys.stdout.write(("\n" if index else "") + f"# ==== namespace {namespace}\n")
        _print_files(
            result.files,
            secret_files=result.secret_files,
            show_secrets=args.show_secrets,
            out=sys.stdout,
        )
    return status
