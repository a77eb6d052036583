"""Throughput benchmarks: kglance side by side with glance_store and the machine's limits.

The package is imported by two different interpreters: the project's venv (the runner and the
kglance cases) and a separate venv holding glance_store 5.7.0 (its cases only). Everything a
child process needs at start-up (``core``, ``child``) therefore uses the standard library only.
"""
