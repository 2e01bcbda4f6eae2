"""Benchmarks of s3torchconnector beside its peers: `python -m bench [--quick]` (see bench/README.md)."""
