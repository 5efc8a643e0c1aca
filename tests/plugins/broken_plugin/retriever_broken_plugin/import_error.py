"""Fails on import: a dependency the plugin forgot to declare."""

import retriever_dependency_that_is_not_installed  # noqa: F401
