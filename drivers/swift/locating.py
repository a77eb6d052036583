"""Which configured account reads a location, and whether a location belongs to this backend.

Old glance_store locations may carry ``user:key@``. kglance never authenticates with
credentials taken from a location: anyone who can register a location could otherwise make the
sidecar log in to any auth service with any credentials. The location only *selects* one of the
accounts configured for this backend, and that account's credentials are used:

* ``swift+config://<ref>/...``: the accounts-file section ``<ref>`` (any section, not only the
  default one; glance re-wrote such locations to the default reference).
* ``swift[+http|+https]://[user:key@]<auth address>/<c>/<obj>`` (single-tenant): the accounts
  whose ``auth_address`` is that URL (``swift://`` and ``swift+https://`` mean https). Among
  several, the one whose ``user`` equals the location's user, else the default account, else
  the only one; anything else is ambiguous and refused. The key in the location is ignored, so
  rotated service credentials keep old locations readable.
* ``swift[+http|+https]://<storage URL>/<c>/<obj>`` (multi-tenant): the service account, sent to
  that storage URL, which must be on the same scheme, host and port as the service account's
  own storage URL (another account of the same cluster is readable when the service user has
  rights there, e.g. a reseller admin; a token is never sent to another host).
"""

from __future__ import annotations

import dataclasses

from kglance.drivers import errors, locations
from kglance.drivers.swift import accounts, naming


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One object and the account (and storage URL) to reach it with."""

    account: accounts.Account
    container: str
    obj: str
    url: str | None = None  # a storage URL other than the account's own

    def __str__(self) -> str:
        return f"{self.container}/{self.obj}"


class Locator:
    def __init__(
        self,
        *,
        default: accounts.Account,
        references: dict[str, accounts.Account],
        multi_tenant: bool,
    ) -> None:
        self.default = default
        self.references = references
        self.multi_tenant = multi_tenant

    @property
    def uses_config_file(self) -> bool:
        return bool(self.references)

    def _all(self) -> list[accounts.Account]:
        return list(self.references.values()) if self.references else [self.default]

    def new_location(
        self, container: str, obj: str, *, storage_url: str | None
    ) -> locations.SwiftLocation:
        if self.multi_tenant:
            if storage_url is None:
                raise RuntimeError("a multi-tenant location needs the storage URL")
            return naming.url_location(storage_url, container, obj)
        if self.default.reference is not None:
            return naming.config_location(self.default.reference, container, obj)
        return naming.url_location(self.default.auth_address, container, obj)

    def target(self, location: locations.Location, *, storage_url: str | None) -> Target:
        """The account serving ``location``; ``InvalidLocation`` when none does.

        ``storage_url`` is the service account's storage URL when it is known; multi-tenant
        locations are checked against it.
        """
        if not isinstance(location, locations.SwiftLocation):
            raise errors.InvalidLocation(f"location {location} is not a Swift location")
        if self.multi_tenant:
            return self._multi_tenant_target(location, storage_url=storage_url)
        reference = location.reference
        if reference is not None:
            account = self.references.get(reference)
            if account is None:
                raise errors.InvalidLocation(
                    f"location {location}: no account reference {reference!r} in "
                    "swift_store_config_file"
                )
            return Target(account, location.container, location.obj)
        return Target(self._account_for_url(location), location.container, location.obj)

    def _account_for_url(self, location: locations.SwiftLocation) -> accounts.Account:
        wanted = accounts.normalise_url(location.swift_url)
        candidates = [a for a in self._all() if a.auth_url == wanted]
        if not candidates:
            raise errors.InvalidLocation(
                f"location {location}: no configured Swift account authenticates at that address"
            )
        if location.user is not None:
            by_user = [a for a in candidates if a.user == location.user]
            if len(by_user) == 1:
                return by_user[0]
        if self.default in candidates:
            return self.default
        if len(candidates) == 1:
            return candidates[0]
        raise errors.InvalidLocation(
            f"location {location}: several configured accounts authenticate at that address "
            "and none is selected by the location's user"
        )

    def _multi_tenant_target(
        self, location: locations.SwiftLocation, *, storage_url: str | None
    ) -> Target:
        if location.reference is not None:
            raise errors.InvalidLocation(
                f"location {location}: swift+config locations need swift_store_config_file, "
                "which a multi-tenant store cannot have"
            )
        url = location.swift_url
        if storage_url is not None and not naming.same_origin(url, storage_url):
            raise errors.InvalidLocation(
                f"location {location} is not on this backend's Swift ({storage_url})"
            )
        return Target(self.default, location.container, location.obj, url=url)

    def owns(self, location: locations.Location, *, storage_url: str | None) -> bool:
        try:
            self.target(location, storage_url=storage_url)
        except errors.InvalidLocation:
            return False
        return True
