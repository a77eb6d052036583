"""Storage drivers behind one async streaming interface, and the policy wrapped around them.

Importing this package imports no storage SDK: drivers load lazily through ``registry``.
The modules a driver author or a caller needs:

* ``base``: the ``Driver`` interface, ``Feature`` flags, ``ByteRange``, ``Blob``, ``Stored``;
* ``errors``: the error tree, with HTTP statuses and retryability;
* ``locations``: parsing and formatting of every glance_store location URI;
* ``pipeline``: hashing, size enforcement, verifiers and expected digests;
* ``backends``: a configured backend (driver + id + policy) and the set of them;
* ``registry``: store type names to driver classes.
"""
