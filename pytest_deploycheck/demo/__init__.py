"""A small control-plane service to run deploy gates against: ``python -m pytest_deploycheck.demo``."""
