"""MkDocs hook: the `sectigo` command reference, rendered from the Typer app at build time.

A page holding the line ``<!-- sectigo:cli-reference -->`` gets, in its place, one
section per command (sub-commands included): the usage line, the help text, a table of
the options and arguments, and the exact ``--help`` output. Everything comes from
``typer.main.get_command(sectigo_iot.cli.app)``, so the page cannot drift from the code.

Typer (0.29 and later) ships its own copy of Click, so this walks the command objects
by duck typing (``list_commands``, ``get_params``, ``get_help``) rather than through
``click`` itself; ``mkdocs-click`` needs a real ``click.Command`` and does not fit.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from mkdocs.plugins import event_priority
except ImportError:  # imported by tests/test_docs.py where MkDocs is not installed

    def event_priority(priority: float) -> Any:
        return lambda function: function


MARKER = "<!-- sectigo:cli-reference -->"
HELP_WIDTH = 88


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker with the generated reference."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render_reference())


def render_reference() -> str:
    """The whole reference as Markdown."""
    from typer.main import get_command

    from sectigo_iot.cli import app

    # Help text is wrapped to the terminal width; fix it so the page is reproducible.
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    try:
        root = get_command(app)
        root_ctx = root.context_class(
            root, info_name="sectigo", terminal_width=HELP_WIDTH, **root.context_settings
        )
        entries = list(_walk(root, root_ctx, ("sectigo",)))
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old

    out = ["| Command | What it does |", "|---|---|"]
    for path, command, _ctx in entries[1:]:
        name = " ".join(path)
        out.append(f"| [`{name}`](#{_anchor(path)}) | {_cell(_short_help(command))} |")
    out.append("")
    for path, command, ctx in entries:
        out.extend(_section(path, command, ctx))
    return "\n".join(out)


def _walk(command: Any, ctx: Any, path: tuple[str, ...]) -> Any:
    yield path, command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx, **sub.context_settings)
            yield from _walk(sub, sub_ctx, (*path, name))


def _anchor(path: tuple[str, ...]) -> str:
    return "cmd-" + "-".join(path[1:]) if len(path) > 1 else "cmd-sectigo"


def _section(path: tuple[str, ...], command: Any, ctx: Any) -> list[str]:
    level = "#" * min(len(path) + 1, 4)
    title = " ".join(path)
    lines = [f"{level} `{title}` {{#{_anchor(path)}}}", ""]
    help_text = (command.help or "").strip()
    if help_text:
        lines += [_escape(help_text), ""]
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", usage, "```", ""]
    rows = [_param_row(param, ctx) for param in command.get_params(ctx)]
    rows = [row for row in rows if row is not None]
    if rows:
        lines += ["| Option or argument | Environment | Default | Meaning |", "|---|---|---|---|"]
        lines += rows
        lines.append("")
    lines += [
        '??? note "`' + title + ' --help`"',
        "",
        "    ```text",
        *("    " + line if line else "" for line in command.get_help(ctx).splitlines()),
        "    ```",
        "",
    ]
    return lines


def _param_row(param: Any, ctx: Any) -> str | None:
    if getattr(param, "hidden", False):
        return None
    if param.param_type_name == "argument":
        names = f"`{getattr(param, 'metavar', None) or (param.name or '').upper()}`"
        meaning = getattr(param, "help", None) or ("required" if param.required else "")
    else:
        names = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        meaning = param.help or ""
    envvar = param.envvar
    if isinstance(envvar, (list, tuple)):
        envvar = ", ".join(envvar)
    env = f"`{envvar}`" if envvar else ""
    default = ""
    if getattr(param, "show_default", None) is not False and not getattr(param, "is_flag", False):
        value = param.default
        if value not in (None, "", (), []) and not callable(value):
            default = f"`{value}`"
    if param.required:
        meaning = (meaning + " (required)").strip()
    return f"| {names} | {env} | {default} | {_cell(meaning)} |"


def _short_help(command: Any) -> str:
    text = (command.short_help or command.help or "").strip()
    first = text.split("\n\n", 1)[0].replace("\n", " ")
    return first


def _cell(text: str) -> str:
    return _escape(" ".join(text.split())).replace("|", "\\|")


def _escape(text: str) -> str:
    # Help text is plain text: keep `<batchId>`, `*` and `_` literal in Markdown.
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*").replace("_", "\\_")


# -- API reference coverage -------------------------------------------------------------

#: every public module whose ``__all__`` the API reference must cover, name by name
REFERENCE_MODULES = (
    "sectigo_iot",
    "sectigo_iot.resources",
    "sectigo_iot.certs",
    "sectigo_iot.lifecycle",
    "sectigo_iot.fleet",
    "sectigo_iot.inventory",
    "sectigo_iot.emulator",
    "sectigo_iot.testing",
)


@event_priority(-100)  # after mkdocstrings has written objects.inv
def on_post_build(config: Any) -> None:
    """Fail the build when a name in a public ``__all__`` has no entry in the reference."""
    import zlib
    from pathlib import Path

    from mkdocs.exceptions import PluginError

    inventory = Path(config["site_dir"]) / "objects.inv"
    raw = inventory.read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    documented = {line.split(" ", 1)[0] for line in body.splitlines()}
    root = Path(config["docs_dir"]).parent
    missing = [
        f"{module}.{name}"
        for module in REFERENCE_MODULES
        for name in public_names(root, module)
        if f"{module}.{name}" not in documented
    ]
    if missing:
        raise PluginError("names in __all__ missing from the API reference: " + ", ".join(missing))


def public_names(root: Any, module: str) -> list[str]:
    """The ``__all__`` of ``module``, read from its source under ``root``.

    Read, not imported: importing ``sectigo_iot.testing`` needs pytest, which a venv
    with only the ``[docs]`` extra does not have (and the reference is read statically).
    """
    import ast

    base = root / module.replace(".", "/")
    source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise ValueError(f"{source} has no __all__")
