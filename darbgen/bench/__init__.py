"""Benchmarks of darbgen's hot paths (run ``python -m darbgen.bench.prune``)."""
