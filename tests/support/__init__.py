"""Helpers that are not tests: independent implementations and the acceptance script."""
