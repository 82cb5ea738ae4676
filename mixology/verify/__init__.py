"""Verification: the runner (a property on an implementation), the Python API, the pytest plugin."""
