"""The spec on every implementation, mutant, independent candidate and bad input."""
