"""Benchmarks: ``make bench`` (``bench.throughput``) and ``make bench-calls``
(``bench/calls_per_identify.py``). Figures and how to read them: docs/benchmarks.md.

Nothing here is imported by the service, and nothing here may talk to anything but
loopback processes it started itself.
"""
