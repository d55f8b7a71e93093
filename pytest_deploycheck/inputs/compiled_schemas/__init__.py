"""Validators generated from the packaged schemas by scripts/compile_schemas.py."""
