"""``retriever plugins list``: which plugins loaded, their hooks, versions and components,
and which are broken, with the error."""

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
    # component -> its declared options (None: the plugin declares none; checked by the
    # factory's signature)
    options: dict[str, dict[str, list[dict] | None]] = {}
    summaries: dict[str, dict[str, list[str]]] = {}  # plugin -> options line -> components
    for kind in ("encoder", "indexer", "ocr", "compressor"):
        for spec in registry.specs(kind):
            key = f"{kind}:{spec.name}"
            components.setdefault(spec.plugin, []).append(key)
            options.setdefault(spec.plugin, {})[key] = None if spec.options is None else [
                option.to_dict() for option in spec.options]
            summaries.setdefault(spec.plugin, {}).setdefault(
                spec.options_summary(), []).append(key)
    for info in host_plugins():
        row = {"name": info.name, "version": info.version, "builtin": info.builtin,
               "hooks": list(info.hooks), "components": components.get(info.name, []),
               "broken": info.broken, "error": info.error,
               "options": options.get(info.name, {})}
        if json_out:
            output.print_json(row)
        elif info.broken:
            typer.echo(f"{info.name} {info.version} (third-party, BROKEN)")
            typer.echo(f"   error: {info.error}")
        else:
            origin = "built-in" if info.builtin else "third-party"
            typer.echo(f"{info.name} {info.version} ({origin})")
            typer.echo(f"   hooks: {', '.join(info.hooks) or '-'}")
            typer.echo(f"   provides: {', '.join(row['components']) or '-'}")
            # components with the same options (the CLIP table, say) share one line
            for summary, keys in summaries.get(info.name, {}).items():
                names = keys[0] if len(keys) == 1 else f"{keys[0]} (and {len(keys) - 1} more)"
                typer.echo(f"   options of {names}: {summary}")
