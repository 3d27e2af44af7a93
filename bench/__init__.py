"""Workbench benchmarks: ``python -m bench`` lists the scenarios, ``python -m bench NAME`` runs one.

Benchmarks run against their own database (``workbench_bench``) on the same server as the
developer's database, never against the developer's data. See bench/README.md.
"""
