"""Checks: the suite file, and one module per kind of check behind one interface."""
