"""The command line beside pytest: ``python -m pytest_deploycheck COMMAND`` (see ``__main__``)."""
