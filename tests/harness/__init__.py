"""The harness around the spec: the Python API, mixology.check, the plugin, the CLI, the runner."""
