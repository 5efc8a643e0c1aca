"""``retriever plugins list``: which plugins loaded, their hooks, versions and components."""

from __future__ import annotations

__all__ = ["plugins_app"]

from typing import Annotated

import typer

from . import output

plugins_app = typer.Typer(help="Inspect installed plugins.", no_args_is_help=True)


@plugins_app.command("list")
def list_plugins(json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False) -> None:
    """Plugins with their hooks, versions and the components they register."""
    from retriever.plugin_host import get_registry, list_plugins as host_plugins

    registry = get_registry()
    components: dict[str, list[str]] = {}
    for kind in ("encoder", "indexer", "ocr", "compressor"):
        for spec in registry.specs(kind):
            components.setdefault(spec.plugin, []).append(f"{kind}:{spec.name}")
    for info in host_plugins():
        row = {"name": info.name, "version": info.version, "builtin": info.builtin,
               "hooks": list(info.hooks), "components": components.get(info.name, [])}
        if json_out:
            output.print_json(row)
        else:
            origin = "built-in" if info.builtin else "third-party"
            typer.echo(f"{info.name} {info.version} ({origin})")
            typer.echo(f"   hooks: {', '.join(info.hooks) or '-'}")
            typer.echo(f"   provides: {', '.join(row['components']) or '-'}")
