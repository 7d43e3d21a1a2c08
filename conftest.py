"""Registers the harness's pytest plugin for this repository's tests."""

pytest_plugins = ["harness.plugin"]
