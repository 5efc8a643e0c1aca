"""Broken third-party plugins for the test suite; each sub-module fails differently."""
