"""The ``swift`` store: images in OpenStack Swift, as glance_store's swift driver stores them.

Everything glance_store 5.7.0's swift store does (single- and multi-tenant stores, account
references in ``swift_store_config_file``, the swift URI grammar including old credentialed
locations, container seeds, create-on-put, large objects, Keystone v3, region/endpoint/service
type, CA file and insecure, resumed GETs, multi-tenant ACLs, expire-soon re-authentication),
rebuilt where it was weak: large images are static large objects whose segments upload
concurrently in bounded memory, a failed upload leaves no segment and no manifest, the declared
size is enforced on every path, ranged reads are native, a broken download resumes or raises
(never ends short), deletes remove every segment of every listing page, and credentials never
appear in locations or logs. Auth v1 (tempauth) is supported as well. See ``docs/swift.md``.

Modules: ``options`` (glance-named options), ``accounts`` (the accounts file), ``auth``
(tokens: v1 and Keystone v3), ``connections`` (pooled connections, retries, error
translation), ``naming`` (containers, segments, new locations), ``locating`` (which account
reads a location), ``bodies`` and ``transfers`` (streaming request bodies from the event loop
into threads), ``objects`` (the blocking requests), ``segments`` (SLO uploads), ``reading``
(ranged, resuming reads), ``removal`` (deletes), ``driver``.
"""

from kglance.drivers.swift.driver import SwiftDriver, acl_headers
from kglance.drivers.swift.naming import get_container_name
from kglance.drivers.swift.options import SwiftOptions

__all__ = ["SwiftDriver", "SwiftOptions", "acl_headers", "get_container_name"]
