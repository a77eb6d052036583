"""Location URIs: one pure, stdlib-only parser and formatter for every glance_store scheme.

A location says where an image's bytes live. Glance persists them, so two needs pull apart:

* Old locations must stay readable, including the credentialed forms glance_store wrote
  (``swift://account:user:key@auth/container/obj``, ``s3://access:secret@host/bucket/key``,
  ``https://user:password@host/path``). ``parse`` accepts them and keeps the credentials in
  fields that never appear in ``repr`` or ``str``.
* Locations kglance creates carry no credentials: ``Location.uri()`` leaves them out unless
  ``credentials=True`` is asked for explicitly (only the round-trip tests and a driver
  re-reading an old location need that), and ``str(location)`` is always safe to log.

The grammars follow glance_store 5.7.0 (``file``/``filesystem``, ``http(s)``, ``swift``,
``swift+http(s)``, ``swift+config``, ``s3``, ``s3+http(s)``, ``rbd``, ``cinder``); where its
parser was lax or wrong the differences are deliberate and listed in
``docs/glance-store-compat.md``. The operator imports this module, so it must never import
an SDK.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
import uuid
from typing import ClassVar

from kglance.drivers import errors


class Location:
    """Base of the per-scheme location types (all frozen dataclasses)."""

    schemes: ClassVar[tuple[str, ...]] = ()

    @property
    def scheme(self) -> str:
        raise NotImplementedError

    def uri(self, *, credentials: bool = False) -> str:
        raise NotImplementedError

    @property
    def has_credentials(self) -> bool:
        return False

    def without_credentials(self) -> Location:
        return self

    def __str__(self) -> str:
        return self.uri()


def _invalid(uri: str, reason: str) -> errors.InvalidLocation:
    return errors.InvalidLocation(f"invalid location {redact(uri)!r}: {reason}")


def _split_scheme(
    uri: str, allowed: tuple[str, ...], *, nested_urls: bool = False
) -> tuple[str, str]:
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in allowed:
        raise _invalid(uri, f"scheme must be one of {', '.join(allowed)}")
    if "://" in rest and not nested_urls:
        raise _invalid(uri, "more than one '://' (credentials or a URL inside the location?)")
    return scheme, rest


# --------------------------------------------------------------------------- file


@dataclasses.dataclass(frozen=True, slots=True)
class FileLocation(Location):
    path: str

    schemes: ClassVar[tuple[str, ...]] = ("file", "filesystem")

    @property
    def scheme(self) -> str:
        return "file"

    def uri(self, *, credentials: bool = False) -> str:
        return f"file://{self.path}"

    @classmethod
    def parse(cls, uri: str) -> FileLocation:
        _, rest = _split_scheme(uri, cls.schemes)
        path = rest.strip()
        if not path:
            raise _invalid(uri, "no path")
        if "\x00" in path:
            raise _invalid(uri, "NUL byte in path")
        return cls(path=path)


# --------------------------------------------------------------------------- http


_PORT = re.compile(r"^\d{1,5}$")


def _split_userinfo(uri: str, authority: str) -> tuple[str | None, str | None, str]:
    """Split ``user:password@host`` as glance_store does (the password may be empty)."""
    if "@" not in authority:
        return None, None, authority
    creds, _, host = authority.rpartition("@")
    if ":" not in creds:
        raise _invalid(uri, "credentials are not well formed (expected user:password@)")
    user, _, password = creds.partition(":")
    return urllib.parse.unquote(user), urllib.parse.unquote(password), host


def _check_host(uri: str, host: str) -> None:
    if not host:
        raise _invalid(uri, "no host")
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise _invalid(uri, "unterminated IPv6 address")
        port = host[end + 1 :]
        if port and not (port.startswith(":") and _PORT.match(port[1:])):
            raise _invalid(uri, "port must be a number")
    elif ":" in host:
        port = host.rpartition(":")[2]
        if not _PORT.match(port):
            raise _invalid(uri, "port must be a number")


@dataclasses.dataclass(frozen=True, slots=True)
class HttpLocation(Location):
    """``http(s)://[user:password@]netloc/path[?query]`` (read-only store)."""

    scheme_name: str
    netloc: str
    path: str
    query: str = ""
    user: str | None = dataclasses.field(default=None, repr=False)
    password: str | None = dataclasses.field(default=None, repr=False)

    schemes: ClassVar[tuple[str, ...]] = ("http", "https")

    @property
    def scheme(self) -> str:
        return self.scheme_name

    @property
    def has_credentials(self) -> bool:
        return self.user is not None

    def without_credentials(self) -> HttpLocation:
        return dataclasses.replace(self, user=None, password=None)

    def url(self) -> str:
        """The URL to fetch, without credentials (they go into an Authorization header)."""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme_name}://{self.netloc}{self.path}{query}"

    def uri(self, *, credentials: bool = False) -> str:
        if not (credentials and self.user is not None):
            return self.url()
        user = urllib.parse.quote(self.user, safe="")
        password = urllib.parse.quote(self.password or "", safe="")
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme_name}://{user}:{password}@{self.netloc}{self.path}{query}"

    @classmethod
    def parse(cls, uri: str) -> HttpLocation:
        # a query may carry a URL (?next=https://...): only the authority is checked
        scheme, rest = _split_scheme(uri, cls.schemes, nested_urls=True)
        rest, _, _fragment = rest.partition("#")
        rest, _, query = rest.partition("?")
        authority, slash, path = rest.partition("/")
        user, password, netloc = _split_userinfo(uri, authority)
        _check_host(uri, netloc)
        return cls(
            scheme_name=scheme,
            netloc=netloc,
            path=slash + path,
            query=query,
            user=user,
            password=password,
        )


# --------------------------------------------------------------------------- swift


@dataclasses.dataclass(frozen=True, slots=True)
class SwiftLocation(Location):
    """``swift[+http|+https]://[user:key@]auth_or_store_url/container/obj``, or
    ``swift+config://reference/container/obj`` whose credentials live in the accounts file.

    For ``swift+config`` the ``auth_or_store_url`` field holds the reference name.
    """

    scheme_name: str
    auth_or_store_url: str
    container: str
    obj: str
    user: str | None = dataclasses.field(default=None, repr=False)
    key: str | None = dataclasses.field(default=None, repr=False)

    schemes: ClassVar[tuple[str, ...]] = ("swift", "swift+http", "swift+https", "swift+config")

    @property
    def scheme(self) -> str:
        return self.scheme_name

    @property
    def reference(self) -> str | None:
        """The accounts-file section of a ``swift+config`` location."""
        return self.auth_or_store_url if self.scheme_name == "swift+config" else None

    @property
    def swift_url(self) -> str:
        """The URL the location names, ``https`` unless the scheme is ``swift+http``."""
        prefix = "http://" if self.scheme_name == "swift+http" else "https://"
        return prefix + self.auth_or_store_url

    @property
    def has_credentials(self) -> bool:
        return self.user is not None

    def without_credentials(self) -> SwiftLocation:
        return dataclasses.replace(self, user=None, key=None)

    def uri(self, *, credentials: bool = False) -> str:
        creds = ""
        if credentials and self.user is not None:
            user = urllib.parse.quote(self.user, safe="")
            key = urllib.parse.quote(self.key or "", safe="")
            creds = f"{user}:{key}@"
        return f"{self.scheme_name}://{creds}{self.auth_or_store_url}/{self.container}/{self.obj}"

    @classmethod
    def parse(cls, uri: str) -> SwiftLocation:
        scheme, rest = _split_scheme(uri, cls.schemes)
        rest = rest.partition("?")[0].partition("#")[0]
        user = key = None
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            creds, _, authority = authority.rpartition("@")
            if ":" not in creds:
                raise _invalid(uri, "badly formed credentials in Swift URI")
            # split before unquoting, so a quoted ':' (%3A) stays inside the user or the key
            quoted_user, _, quoted_key = creds.rpartition(":")
            user = urllib.parse.unquote(quoted_user)
            key = urllib.parse.unquote(quoted_key)
        if not authority:
            raise _invalid(uri, "no host")
        parts = (authority + slash + path).rstrip("/").split("/")
        if len(parts) < 3 or not all(parts[-3:]):
            raise _invalid(uri, "a Swift location needs a host, a container and an object")
        if scheme == "swift+config" and len(parts) != 3:
            raise _invalid(uri, "swift+config locations are swift+config://ref/container/obj")
        return cls(
            scheme_name=scheme,
            auth_or_store_url="/".join(parts[:-2]),
            container=parts[-2],
            obj=parts[-1],
            user=user,
            key=key,
        )


# --------------------------------------------------------------------------- s3


@dataclasses.dataclass(frozen=True, slots=True)
class S3Location(Location):
    """``s3[+http|+https]://[access:secret@]s3serviceurl/bucket/key``.

    The host is informational: glance_store and kglance connect to the configured host.
    """

    scheme_name: str
    s3serviceurl: str
    bucket: str
    key: str
    accesskey: str | None = dataclasses.field(default=None, repr=False)
    secretkey: str | None = dataclasses.field(default=None, repr=False)

    schemes: ClassVar[tuple[str, ...]] = ("s3", "s3+http", "s3+https")

    @property
    def scheme(self) -> str:
        return self.scheme_name

    @property
    def has_credentials(self) -> bool:
        return self.accesskey is not None

    def without_credentials(self) -> S3Location:
        return dataclasses.replace(self, accesskey=None, secretkey=None)

    def uri(self, *, credentials: bool = False) -> str:
        creds = ""
        if credentials and self.accesskey is not None:
            # glance_store wrote these unquoted; quoting keeps ':', '@' and '/' parseable
            access = urllib.parse.quote(self.accesskey, safe="")
            secret = urllib.parse.quote(self.secretkey or "", safe="")
            creds = f"{access}:{secret}@"
        return f"{self.scheme_name}://{creds}{self.s3serviceurl}/{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        scheme, rest = _split_scheme(uri, cls.schemes)
        accesskey = secretkey = None
        if "@" in rest:
            creds, _, rest = rest.rpartition("@")
            access, sep, secret = creds.partition(":")
            if not sep or not access:
                raise _invalid(uri, "badly formed S3 credentials (expected access:secret@)")
            accesskey = urllib.parse.unquote(access)
            secretkey = urllib.parse.unquote(secret)
        parts = rest.strip("/").split("/")
        if len(parts) < 3 or not all(parts):
            raise _invalid(uri, "an S3 location needs a host, a bucket and a key")
        return cls(
            scheme_name=scheme,
            s3serviceurl="/".join(parts[:-2]),
            bucket=parts[-2],
            key=parts[-1],
            accesskey=accesskey,
            secretkey=secretkey,
        )


# --------------------------------------------------------------------------- rbd


@dataclasses.dataclass(frozen=True, slots=True)
class RbdLocation(Location):
    """``rbd://fsid/pool/image/snapshot``, or the old one-component ``rbd://image``."""

    image: str
    fsid: str | None = None
    pool: str | None = None
    snapshot: str | None = None

    schemes: ClassVar[tuple[str, ...]] = ("rbd",)

    def __post_init__(self) -> None:
        parts = (self.fsid, self.pool, self.snapshot)
        if any(p is None for p in parts) and any(p is not None for p in parts):
            raise ValueError("fsid, pool and snapshot are given together or not at all")

    @property
    def scheme(self) -> str:
        return "rbd"

    def uri(self, *, credentials: bool = False) -> str:
        if self.fsid is None or self.pool is None or self.snapshot is None:
            return f"rbd://{urllib.parse.quote(self.image, safe='')}"
        parts = (self.fsid, self.pool, self.image, self.snapshot)
        return "rbd://" + "/".join(urllib.parse.quote(p, safe="") for p in parts)

    @classmethod
    def parse(cls, uri: str) -> RbdLocation:
        _, rest = _split_scheme(uri, cls.schemes)
        parts = [urllib.parse.unquote(p) for p in rest.split("/")]
        if not all(parts):
            raise _invalid(uri, "URI cannot contain empty components")
        if len(parts) == 1:
            return cls(image=parts[0])
        if len(parts) == 4:
            return cls(fsid=parts[0], pool=parts[1], image=parts[2], snapshot=parts[3])
        raise _invalid(uri, "URI must have exactly 1 or 4 components")


# --------------------------------------------------------------------------- cinder


@dataclasses.dataclass(frozen=True, slots=True)
class CinderLocation(Location):
    """``cinder://[store/]volume-id``."""

    volume_id: str
    store: str | None = None

    schemes: ClassVar[tuple[str, ...]] = ("cinder",)

    @property
    def scheme(self) -> str:
        return "cinder"

    def uri(self, *, credentials: bool = False) -> str:
        if self.store:
            return f"cinder://{self.store}/{self.volume_id}"
        return f"cinder://{self.volume_id}"

    @classmethod
    def parse(cls, uri: str) -> CinderLocation:
        _, rest = _split_scheme(uri, cls.schemes)
        parts = rest.split("/")
        if len(parts) > 2:
            raise _invalid(uri, "expected cinder://[store/]volume-id")
        volume_id = parts[-1]
        try:
            canonical = str(uuid.UUID(volume_id))
        except ValueError:
            raise _invalid(uri, "URI contains invalid volume ID") from None
        if canonical != volume_id.lower():
            raise _invalid(uri, "URI contains invalid volume ID")
        store = parts[0] if len(parts) == 2 and parts[0] else None
        return cls(volume_id=canonical, store=store)


# --------------------------------------------------------------------------- dispatch


_TYPES: tuple[
    type[FileLocation | HttpLocation | SwiftLocation | S3Location | RbdLocation | CinderLocation],
    ...,
] = (
    FileLocation,
    HttpLocation,
    SwiftLocation,
    S3Location,
    RbdLocation,
    CinderLocation,
)
_BY_SCHEME = {scheme: cls for cls in _TYPES for scheme in cls.schemes}

KNOWN_SCHEMES: tuple[str, ...] = tuple(sorted(_BY_SCHEME))


def scheme_of(uri: str) -> str:
    """The scheme of ``uri`` (lower-cased), or ``InvalidLocation`` when it has none."""
    scheme, sep, _ = uri.partition("://")
    if not sep or not scheme:
        raise _invalid(uri, "not a URI (no scheme)")
    return scheme.lower()


def parse(uri: str) -> Location:
    """Parse any location glance_store knows; ``InvalidLocation`` if it is malformed."""
    if not isinstance(uri, str):
        raise errors.InvalidLocation(f"a location must be a string, not {type(uri).__name__}")
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidLocation("a location must be valid Unicode (lone surrogate)") from None
    if any(ord(c) < 0x20 or c == "\x7f" for c in uri):
        raise _invalid(uri, "control characters in the location")
    scheme = scheme_of(uri)
    cls = _BY_SCHEME.get(scheme)
    if cls is None:
        raise _invalid(uri, f"unknown scheme {scheme!r}")
    if not uri.startswith(scheme):  # normalise an upper-case scheme
        uri = scheme + uri[len(scheme) :]
    return cls.parse(uri)


def redact(uri: str) -> str:
    """``uri`` with any ``user:password@`` part replaced, for logs and error messages.

    It errs on the side of hiding: a password may hold '?', '#' or (in old S3 locations) '/',
    so the userinfo is taken to run to the last '@' of the authority (of the whole rest for
    S3, as its parser does), even if that also hides a query.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    if scheme.lower().startswith("s3"):
        userinfo_end = rest.rfind("@")
    else:
        userinfo_end = rest.partition("/")[0].rfind("@")
    if userinfo_end < 0:
        return uri
    return f"{scheme}://***@{rest[userinfo_end + 1 :]}"
