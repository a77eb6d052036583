"""Where an image lives in Swift: containers, segment names, and the locations that name them.

Containers (glance_store's rules, kept exactly so existing deployments find their images):

* single-tenant, ``swift_store_multiple_containers_seed`` 0: ``swift_store_container``;
* single-tenant, seed N in 1..32: ``<container>_<first N characters of the lower-cased id>``,
  where dashes within the first N characters do not count (glance's formula: take
  ``id[:N + id[:N].count('-')]``), so seed 3 gives ``glance_fda`` for ``fdae39a1-...`` and
  seed 10 gives ``glance_fdae39a1-ba``;
* multi-tenant: one container per image, ``<container>_<image id>``.

SLO segments live in the image's own container under ``<image id>/<upload id>/<8-digit
index>``. Image ids never contain ``/``, so a segment name can never be an image, every upload
has its own prefix (concurrent uploads of one id cannot overwrite each other's segments), and
in multi-tenant mode the container ACLs that let a tenant read an image also cover its
segments (Swift checks the segment container's ACL when it serves an SLO).

Locations kglance writes never contain credentials:

* single-tenant with ``swift_store_config_file``: ``swift+config://<default ref>/<c>/<obj>``;
* single-tenant without it: ``swift+http(s)://<auth address without scheme>/<c>/<obj>``
  (glance put ``user:key@`` in front of the host);
* multi-tenant: ``swift+http(s)://<storage URL without scheme>/<c>/<obj>``.
"""

from __future__ import annotations

import urllib.parse

from kglance.drivers import errors, locations
from kglance.drivers.swift import options as swift_options


def get_container_name(image_id: str, default_container: str, seed: int) -> str:
    """glance_store's ``get_container_name`` for single-tenant stores."""
    if not 0 <= seed <= 32:
        raise ValueError("swift_store_multiple_containers_seed must be between 0 and 32")
    if seed == 0:
        return default_container
    lowered = image_id.lower()
    width = seed + lowered[:seed].count("-")
    return f"{default_container}_{lowered[:width]}"


def multi_tenant_container(image_id: str, default_container: str) -> str:
    name = f"{default_container}_{image_id}"
    if len(name) > swift_options.MAX_CONTAINER_NAME_LENGTH:
        raise errors.InvalidImageId(
            f"image id {image_id[:40]!r}... is too long for a per-image Swift container "
            f"({swift_options.MAX_CONTAINER_NAME_LENGTH} characters at most with the prefix)"
        )
    return name


def segment_prefix(obj: str, upload_id: str) -> str:
    return f"{obj}/{upload_id}/"


def segment_name(prefix: str, index: int) -> str:
    return f"{prefix}{index:08d}"


def without_scheme(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


def url_location(url: str, container: str, obj: str) -> locations.SwiftLocation:
    """``swift+http(s)://`` naming ``container/obj`` under an auth address or storage URL."""
    scheme = "swift+http" if url.lower().startswith("http://") else "swift+https"
    return locations.SwiftLocation(
        scheme_name=scheme,
        auth_or_store_url=without_scheme(url),
        container=container,
        obj=obj,
    )


def config_location(reference: str, container: str, obj: str) -> locations.SwiftLocation:
    return locations.SwiftLocation(
        scheme_name="swift+config", auth_or_store_url=reference, container=container, obj=obj
    )


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs have the same scheme, host and port (a token may go to both)."""
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme.lower(), pa.netloc.lower()) == (pb.scheme.lower(), pb.netloc.lower())
