"""Swift accounts: the ``swift_store_config_file`` references, or the deprecated single account.

glance_store keeps service credentials in an INI "accounts file" whose section names are
references (``swift+config://<ref>/container/obj``), so credentials never enter Glance's
database. Each section has ``auth_address``, ``user`` and ``key`` (or
``application_credential_id`` and ``application_credential_secret``) and optional
``user_domain_id``/``user_domain_name``/``project_domain_id``/``project_domain_name``
(both domain ids default to ``default`` when neither id nor name is given, as in glance).

Differences from glance_store, on purpose:

* The file is read once, when the driver is built, into immutable ``Account`` objects owned by
  that driver. glance re-read it on every location parse into a process-global parser, so two
  backends with different files merged their sections.
* ``auth_version`` may be ``1`` (tempauth, swauth: a ``GET`` of the auth address with
  ``X-Auth-User``/``X-Auth-Key``) as well as ``3`` (Keystone). glance 5.7.0 forces 3. A section
  without ``auth_version`` takes ``swift_store_auth_version``.
* A broken section is skipped with a warning naming the file, the section and the key (never a
  value), except the default reference, which fails the backend loudly.
* Keys and secrets are ``SecretStr``.
"""

from __future__ import annotations

import configparser
import dataclasses
import logging
import urllib.parse
from collections.abc import Mapping

import pydantic

from kglance.drivers import errors
from kglance.drivers.swift import options as swift_options

logger = logging.getLogger(__name__)

_QUOTES = ('"', "'")


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """One set of service credentials and where to authenticate with them."""

    reference: str | None  # the accounts-file section; None for the deprecated options
    auth_address: str
    auth_version: str  # "1" or "3"
    user: str | None = dataclasses.field(default=None, repr=False)
    key: pydantic.SecretStr | None = dataclasses.field(default=None, repr=False)
    application_credential_id: pydantic.SecretStr | None = dataclasses.field(
        default=None, repr=False
    )
    application_credential_secret: pydantic.SecretStr | None = dataclasses.field(
        default=None, repr=False
    )
    project_name: str | None = None
    project_id: str | None = None
    user_domain_id: str | None = None
    user_domain_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None

    @property
    def name(self) -> str:
        """How messages refer to the account (never with credentials)."""
        if self.reference is not None:
            return f"account reference {self.reference!r}"
        return "the swift_store_auth_address account"

    @property
    def uses_application_credential(self) -> bool:
        return self.application_credential_id is not None

    @property
    def auth_url(self) -> str:
        """``auth_address`` normalised for comparisons with locations."""
        return normalise_url(self.auth_address)


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, no trailing slash: how two URLs are compared."""
    parts = urllib.parse.urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def _check_auth_address(value: str, *, where: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ConfigurationError(f"{where}: auth_address must be an http(s):// URL")
    if parts.username is not None or parts.password is not None:
        raise errors.ConfigurationError(f"{where}: auth_address must not contain credentials")
    return value


def _strip_quotes(value: str) -> str:
    """glance's SwiftConfigParser removes one pair of matching quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        return value[1:-1]
    return value


def _secret(value: str | None) -> pydantic.SecretStr | None:
    return pydantic.SecretStr(value) if value else None


def _section_account(
    reference: str, section: Mapping[str, str], *, default_auth_version: str, where: str
) -> Account:
    values = {k: _strip_quotes(v) for k, v in section.items()}

    def get(key: str) -> str | None:
        return values.get(key) or None

    auth_address = get("auth_address")
    if auth_address is None:
        raise errors.ConfigurationError(f"{where}: auth_address is missing")
    try:
        auth_version = swift_options.normalise_auth_version(
            get("auth_version") or default_auth_version
        )
    except ValueError as exc:
        raise errors.ConfigurationError(f"{where}: {exc}") from None
    account = Account(
        reference=reference,
        auth_address=_check_auth_address(auth_address, where=where),
        auth_version=auth_version,
        user=get("user"),
        key=_secret(get("key")),
        application_credential_id=_secret(get("application_credential_id")),
        application_credential_secret=_secret(get("application_credential_secret")),
        project_name=get("project_name"),
        project_id=get("project_id"),
        user_domain_id=get("user_domain_id"),
        user_domain_name=get("user_domain_name"),
        project_domain_id=get("project_domain_id"),
        project_domain_name=get("project_domain_name"),
    )
    return _with_domain_defaults(_checked(account, where=where))


def _checked(account: Account, *, where: str) -> Account:
    """The credentials are complete for the account's auth version."""
    if account.uses_application_credential:
        if account.auth_version != "3":
            raise errors.ConfigurationError(
                f"{where}: application credentials need auth_version 3 (Keystone)"
            )
        if account.application_credential_secret is None:
            raise errors.ConfigurationError(f"{where}: application_credential_secret is missing")
        return account
    if account.user is None or account.key is None:
        raise errors.ConfigurationError(
            f"{where}: needs user and key (or application_credential_id and "
            "application_credential_secret)"
        )
    if account.auth_version == "3" and not (
        ":" in account.user or account.project_name or account.project_id
    ):
        raise errors.ConfigurationError(
            f"{where}: a Keystone user is written 'project:user' (or set project_name)"
        )
    return account


def _with_domain_defaults(account: Account) -> Account:
    if account.user_domain_id is None and account.user_domain_name is None:
        account = dataclasses.replace(account, user_domain_id="default")
    if account.project_domain_id is None and account.project_domain_name is None:
        account = dataclasses.replace(account, project_domain_id="default")
    return account


def load_file(
    path: str, *, default_reference: str, default_auth_version: str
) -> dict[str, Account]:
    """Every usable reference of the accounts file at ``path``, by section name."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00no-defaults")
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot read swift_store_config_file {path!r}: {exc.strerror or exc}"
        ) from exc
    except configparser.Error as exc:
        # configparser's messages quote lines, and lines hold keys: name the file only
        raise errors.ConfigurationError(
            f"swift_store_config_file {path!r} is not a valid INI file ({type(exc).__name__})"
        ) from None
    accounts: dict[str, Account] = {}
    for reference in parser.sections():
        where = f"swift_store_config_file {path!r} [{reference}]"
        try:
            accounts[reference] = _section_account(
                reference,
                parser[reference],
                default_auth_version=default_auth_version,
                where=where,
            )
        except errors.ConfigurationError as exc:
            if reference == default_reference:
                raise
            logger.warning("%s; this reference is skipped", exc.message)
    if default_reference not in accounts:
        raise errors.ConfigurationError(
            f"default_swift_reference {default_reference!r} is not a section of "
            f"swift_store_config_file {path!r}"
        )
    return accounts


def from_options(opts: swift_options.SwiftOptions) -> Account:
    """The one account of the deprecated ``swift_store_auth_address``/``user``/``key`` options."""
    where = "swift options"
    if opts.swift_store_auth_address is None:
        raise errors.ConfigurationError(
            "no Swift credentials: set swift_store_config_file (with default_swift_reference) "
            "or swift_store_auth_address, swift_store_user and swift_store_key"
        )
    user = opts.swift_store_user.get_secret_value() if opts.swift_store_user else None
    account = Account(
        reference=None,
        auth_address=_check_auth_address(opts.swift_store_auth_address, where=where),
        auth_version=opts.swift_store_auth_version,
        user=user,
        key=opts.swift_store_key,
        application_credential_id=opts.swift_store_application_credential_id,
        application_credential_secret=opts.swift_store_application_credential_secret,
        project_name=opts.swift_store_project_name,
        project_id=opts.swift_store_project_id,
    )
    return _with_domain_defaults(_checked(account, where=where))


def configured(opts: swift_options.SwiftOptions) -> tuple[Account, dict[str, Account]]:
    """The account new images are written with, and every reference that can be read from."""
    if opts.swift_store_config_file is None:
        account = from_options(opts)
        return account, {}
    references = load_file(
        opts.swift_store_config_file,
        default_reference=opts.default_swift_reference,
        default_auth_version=opts.swift_store_auth_version,
    )
    return references[opts.default_swift_reference], references
