"""The client subcommands of ``kglance``: put, get, stat, rm and backends.

They talk to a running sidecar through the blocking ``Client`` and turn every failure into
one line on stderr and an exit status a script can branch on, never a traceback:

    0    success
    1    the sidecar or the storage refused or failed (the line ends with the error code)
    2    bad usage (arguments, a --range, nothing to verify against)
    3    no sidecar answers on the socket
    130  interrupted (a ``get -o`` resumes when run again)

Results are JSON on stdout; progress goes to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from kglance import download
from kglance.drivers import base, errors, pipeline
from kglance.progress import Progress
from kglance.sidecar import wire
from kglance.sidecar.syncclient import Client

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_SIDECAR = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE

Handler = Callable[[argparse.Namespace, Client], int]


class UsageError(Exception):
    """The arguments cannot work together (reported with exit status 2)."""


# -- ranges and digests given on the command line ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RangeSpec:
    """``A-B`` (inclusive, as in HTTP), ``A-`` or ``-N`` (the last N bytes)."""

    first: int | None
    last: int | None

    @classmethod
    def parse(cls, text: str) -> RangeSpec:
        match = re.fullmatch(r"(\d*)-(\d*)", text.strip())
        if match is None or not (match[1] or match[2]):
            raise argparse.ArgumentTypeError(f"expected A-B, A- or -N, got {text!r}")
        first = int(match[1]) if match[1] else None
        last = int(match[2]) if match[2] else None
        if first is not None and last is not None and last < first:
            raise argparse.ArgumentTypeError(f"range {text!r} ends before it starts")
        if first is None and last == 0:
            raise argparse.ArgumentTypeError("the range -0 is empty")
        return cls(first, last)

    def resolve(self, size: int) -> base.ByteRange:
        if self.first is None:  # suffix: the last N bytes
            assert self.last is not None
            if size == 0:
                raise errors.RangeNotSatisfiable("the image is empty", size=size)
            tail = min(self.last, size)
            return base.ByteRange(size - tail, tail)
        length = None if self.last is None else self.last - self.first + 1
        return base.ByteRange(self.first, length).resolve(size)


def _digest(text: str) -> pipeline.ExpectedDigest:
    try:
        return pipeline.ExpectedDigest.parse(text)
    except errors.InvalidRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _digests_from_put_result(path: str, image_id: str) -> tuple[pipeline.ExpectedDigest, ...]:
    """The digests in the JSON ``kglance put`` printed for this image."""
    try:
        result = wire.PutResult.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError, errors.BackendError) as exc:
        raise UsageError(f"--expect {path}: not the JSON result of kglance put ({exc})") from None
    if result.image_id != image_id:
        raise UsageError(f"--expect {path} describes image {result.image_id}, not {image_id}")
    return result.digests()


# -- the commands -------------------------------------------------------------------------------


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def _progress(label: str) -> Callable[[int, int], Progress]:
    def make(total: int, initial: int) -> Progress:
        return Progress(label, total=total, initial=initial, stream=sys.stderr)

    return make


class _CountingReader:
    """A file whose reads advance a progress display."""

    def __init__(self, file: BinaryIO, progress: Progress) -> None:
        self._file = file
        self._progress = progress

    def read(self, size: int = -1, /) -> bytes:
        data = self._file.read(size)
        self._progress.advance(len(data))
        return data


def put(args: argparse.Namespace, client: Client) -> int:
    image_id = args.id or str(uuid.uuid4())
    with _open_source(args.file) as source:
        length = args.size if args.size is not None else wire.regular_file_length(source)
        with Progress(f"put {image_id}", total=length, stream=sys.stderr) as bar:
            result = client.put(
                image_id,
                _CountingReader(source, bar),
                size=length,
                backend=args.backend,
                hash_algo=args.hash,
                checksum=args.checksum,
            )
    _print_json(result.as_json())
    return 0


def _open_source(name: str) -> BinaryIO:
    if name == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(name, "rb")


def _expected_digests(
    args: argparse.Namespace, info: wire.ImageInfo
) -> tuple[pipeline.ExpectedDigest, ...] | None:
    """What ``get`` verifies against, or ``None`` when it was not asked to verify."""
    if args.checksum is not None:
        return (args.checksum,)
    if args.expect is not None:
        if args.range is not None:
            raise UsageError("--expect holds the digest of the whole image; use --checksum")
        return _digests_from_put_result(args.expect, args.image_id)
    if not args.verify:
        return None
    if args.range is not None:
        raise UsageError("--verify of a --range needs that range's digest: --checksum ALG:HEX")
    if not info.digests:
        raise UsageError(
            f"--verify: the sidecar keeps no digest for image {args.image_id} (the filesystem "
            "and http stores do not store one); give it with --checksum ALG:HEX, or with "
            "--expect FILE holding the JSON that kglance put printed"
        )
    return info.digests


def get(args: argparse.Namespace, client: Client) -> int:
    to_stdout = args.output in (None, "-")
    if args.output is None and sys.stdout.isatty():
        raise UsageError("refusing to write image bytes to a terminal: use -o FILE or -o -")
    info = client.head(args.image_id, backend=args.backend)
    expected = _expected_digests(args, info)
    target = args.range.resolve(info.size) if args.range else base.ByteRange().resolve(info.size)
    if to_stdout:
        return _get_to_stdout(args, client, target=target, expected=expected)
    fetch = download.Fetch(
        client=client,
        image_id=args.image_id,
        backend=args.backend,
        target=target,
        image_size=info.size,
        dest=Path(args.output),
    )
    try:
        download.fetch_to_file(
            fetch,
            expected=expected,
            progress=_progress(f"get {args.image_id}"),
            notice=_notice,
        )
    except (KeyboardInterrupt, errors.RemoteUnavailable):
        if fetch.part.exists():
            _notice(f"{fetch.part} keeps what arrived; run the same command again to resume")
        raise
    return 0


def _notice(text: str) -> None:
    print(f"kglance get: {text}", file=sys.stderr)


def _get_to_stdout(
    args: argparse.Namespace,
    client: Client,
    *,
    target: base.ByteRange,
    expected: tuple[pipeline.ExpectedDigest, ...] | None,
) -> int:
    checker = download.Checker(expected) if expected else None
    byte_range = None if args.range is None else target
    out = sys.stdout.buffer
    with (
        client.get(args.image_id, backend=args.backend, byte_range=byte_range) as stream,
        Progress(f"get {args.image_id}", total=stream.info.length, stream=sys.stderr) as bar,
    ):
        for chunk in stream:
            out.write(chunk)
            if checker is not None:
                checker.update(chunk)
            bar.advance(len(chunk))
    out.flush()
    if checker is not None:
        checker.check(f"the bytes written to stdout ({target})")
    return 0


def stat(args: argparse.Namespace, client: Client) -> int:
    info = client.head(args.image_id, backend=args.backend)
    document: dict[str, Any] = {"image_id": args.image_id, "size": info.size}
    for digest in info.digests:
        if digest.algorithm == "md5":
            document["checksum"] = digest.hexdigest
        else:
            document.update(os_hash_algo=digest.algorithm, os_hash_value=digest.hexdigest)
    _print_json(document)
    return 0


def rm(args: argparse.Namespace, client: Client) -> int:
    client.delete(args.image_id, backend=args.backend)
    return 0


def backends(args: argparse.Namespace, client: Client) -> int:
    _print_json([backend.as_json() for backend in client.backends()])
    return 0


# -- wiring -------------------------------------------------------------------------------------


def _fail(command: str, message: str, status: int) -> int:
    one_line = " ".join(message.split())
    print(f"kglance {command}: {one_line}", file=sys.stderr)
    return status


@dataclasses.dataclass(frozen=True, slots=True)
class _Run:
    """Runs a handler against the sidecar and maps every failure to a line and a status."""

    command: str
    handler: Handler

    def __call__(self, args: argparse.Namespace) -> int:
        client = Client(wire.socket_path(args.socket))
        try:
            return self.handler(args, client)
        except wire.SidecarUnavailable as exc:
            return _fail(self.command, exc.message, EXIT_NO_SIDECAR)
        except errors.StoreError as exc:
            return _fail(self.command, f"{exc.message} ({exc.code})", EXIT_FAILED)
        except UsageError as exc:
            return _fail(self.command, str(exc), EXIT_USAGE)
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        except KeyboardInterrupt:
            return _fail(self.command, "interrupted", EXIT_INTERRUPTED)
        except OSError as exc:  # a local file: FILE to put, -o FILE to write
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(self.command, f"{where}{exc.strerror or exc}", EXIT_FAILED)


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so that the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _socket_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--socket",
        metavar="PATH",
        help=f"the sidecar's socket (default: ${wire.SOCKET_ENV}, else {wire.DEFAULT_SOCKET})",
    )
    return parent


def _image_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help_text: str,
    parent: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(name, parents=[parent], help=help_text)
    if name != "put":
        parser.add_argument("image_id", metavar="ID")
    parser.add_argument("--backend", metavar="ID", help="backend id (default: the default one)")
    return parser


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add put, get, stat, rm and backends; each sets ``args.run``."""
    socket = _socket_option()

    p = _image_command(subcommands, "put", help_text="store a file as an image", parent=socket)
    p.add_argument("file", metavar="FILE", help="the image file, or - for stdin")
    p.add_argument("--id", help="image id (default: a new UUID)")
    p.add_argument("--hash", metavar="ALG", help="multihash algorithm (default: sha512)")
    p.add_argument("--size", type=int, metavar="N", help="declare the size (stdin uploads)")
    p.add_argument(
        "--checksum", metavar="ALG:HEX", help="refuse the upload unless it has this digest"
    )
    p.set_defaults(run=_Run("put", put))

    g = _image_command(subcommands, "get", help_text="fetch an image", parent=socket)
    g.add_argument("-o", "--output", metavar="FILE", help="write to FILE (resumable); - stdout")
    g.add_argument("--range", type=RangeSpec.parse, metavar="A-B", help="bytes A to B inclusive")
    g.add_argument("--verify", action="store_true", help="check the digest the sidecar reports")
    g.add_argument("--checksum", type=_digest, metavar="ALG:HEX", help="verify against this")
    g.add_argument("--expect", metavar="FILE", help="verify against a saved kglance put result")
    g.set_defaults(run=_Run("get", get))

    s = _image_command(subcommands, "stat", help_text="print an image's size", parent=socket)
    s.set_defaults(run=_Run("stat", stat))

    r = _image_command(subcommands, "rm", help_text="delete an image", parent=socket)
    r.set_defaults(run=_Run("rm", rm))

    b = subcommands.add_parser("backends", parents=[socket], help="list the backends")
    b.set_defaults(run=_Run("backends", backends))
