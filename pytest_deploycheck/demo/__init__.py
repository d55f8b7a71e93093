"""A small control plane to run deploy gates against: ``python -m pytest_deploycheck.demo``."""
