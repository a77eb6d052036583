"""Swift account references (``swift+config://<reference>/...``) read from configuration.

glance_store resolves a ``swift+config`` location's reference to the auth address, user and
key of a section of the accounts file (``swift_store_config_file``), or, without a file, to
one reference built from the deprecated ``swift_store_auth_address``/``user``/``key``
options. Glance reads the resolved attributes, so the compatibility ``StoreLocation`` does
the same lookup. It is configuration reading only (``configparser``, no Swift client), the
file is read per lookup like glance_store's, and nothing is cached in module state.
"""

from __future__ import annotations

import configparser
from typing import Any

from oslo_config import cfg

from kglance.drivers.glance_store import _options

FIELDS = (
    "auth_address",
    "user",
    "key",
    "application_credential_id",
    "application_credential_secret",
    "project_name",
    "project_id",
)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def store_option(conf: Any, name: str, *, backend_group: str | None) -> Any:
    """A swift option of the store's group (``[backend_defaults]`` fallback), or ``None``."""
    group = backend_group or _options.STORE_CFG_GROUP
    values = _options.read(conf, [name], group=group, shared=backend_group is not None)
    found = values.get(name)
    return None if found is None else found.value


def references(conf: Any, *, backend_group: str | None) -> dict[str, dict[str, str]]:
    """Every account reference the configuration defines, by name."""
    if conf is None:
        return {}
    path = store_option(conf, "swift_store_config_file", backend_group=backend_group)
    if path:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error):
            return {}
        return {
            section: {
                field: _unquote(parser.get(section, field))
                for field in FIELDS
                if parser.has_option(section, field)
            }
            for section in parser.sections()
        }
    address = store_option(conf, "swift_store_auth_address", backend_group=backend_group)
    if not address:
        return {}
    name = store_option(conf, "default_swift_reference", backend_group=backend_group) or "ref1"
    return {
        str(name): {
            "auth_address": str(address),
            "user": store_option(conf, "swift_store_user", backend_group=backend_group) or "",
            "key": store_option(conf, "swift_store_key", backend_group=backend_group) or "",
        }
    }


def uses_accounts_file(conf: Any, *, backend_group: str | None) -> bool:
    try:
        return bool(store_option(conf, "swift_store_config_file", backend_group=backend_group))
    except cfg.Error:
        return False
