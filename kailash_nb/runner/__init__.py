"""Notebooks run headlessly: ``kailash-nb run``/``tour`` (nbclient) and ``kailash-nb check`` (regression tests)."""
