"""``prehydrate mcp-config``: a host config block that starts this very installation, and writes it.

Hosts (Claude Desktop, Cursor, ...) start a server with a command and arguments, from a working
directory of their choosing and without activating any virtual environment, so ``"command":
"prehydrate"`` fails with ``spawn prehydrate ENOENT``. The block printed here names the running
interpreter by its absolute path (the venv's ``bin/python``, not resolved through symlinks, which
would leave the venv) with ``-m prehydrate serve`` and absolute source paths, so it works from
anywhere. ``--write HOST`` merges it into that host's config file next to the servers already
there, after copying the file to ``FILE.bak``.

Host files (looked up in each host's documentation, December 2026):

| host | file | servers under | entry |
| --- | --- | --- | --- |
| claude-desktop | macOS ``~/Library/Application Support/Claude/claude_desktop_config.json``, Windows ``%APPDATA%\\Claude\\...``, Linux ``~/.config/Claude/...`` | ``mcpServers`` | ``command``, ``args``, ``env`` |
| claude-code | ``.mcp.json`` in the current folder (project scope) | ``mcpServers`` | ``type: stdio`` + the above |
| cursor | ``~/.cursor/mcp.json`` (all projects) | ``mcpServers`` | ``command``, ``args``, ``env`` |
| vscode | ``.vscode/mcp.json`` in the current folder (workspace) | ``servers`` | ``type: stdio`` + the above |
"""  # noqa: E501

from __future__ import annotations

import enum
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from .._errors import InputError
from .._text import encode_text, read_text
from ._app import app, err_console, print_error

__all__ = ["Host", "config_path", "merge_server", "server_entry"]


class Host(enum.StrEnum):
    """The MCP hosts whose config file ``--write`` knows."""

    claude_desktop = "claude-desktop"
    claude_code = "claude-code"
    cursor = "cursor"
    vscode = "vscode"


_SERVERS_KEY = {Host.vscode: "servers"}
"""Where a host keeps its servers, when not under ``mcpServers``."""
_TYPED = {Host.claude_code, Host.vscode}
"""Hosts whose entries carry ``"type": "stdio"``."""


def server_entry(paths: list[Path], host: Host, *, executable: str | None = None) -> dict[str, Any]:
    """The entry that starts ``prehydrate serve PATHS`` with this interpreter, from any folder."""
    python = os.path.abspath(executable or sys.executable)  # abspath, not resolve(): keep the venv
    entry: dict[str, Any] = {"type": "stdio"} if host in _TYPED else {}
    entry["command"] = python
    entry["args"] = ["-m", "prehydrate", "serve", *(str(p.expanduser().resolve()) for p in paths)]
    return entry


def config_path(host: Host, *, home: Path | None = None, platform: str | None = None) -> Path:
    """The config file of ``host`` for this user (project-scoped hosts: in the current folder)."""
    home = home or Path.home()
    platform = platform or sys.platform
    if host is Host.claude_desktop:
        if platform == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if platform.startswith("win"):
            appdata = os.environ.get("APPDATA") or str(home / "AppData" / "Roaming")
            return Path(appdata) / "Claude" / "claude_desktop_config.json"
        config = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        return Path(config) / "Claude" / "claude_desktop_config.json"
    if host is Host.cursor:
        return home / ".cursor" / "mcp.json"
    if host is Host.claude_code:
        return Path.cwd() / ".mcp.json"
    return Path.cwd() / ".vscode" / "mcp.json"


class ConfigFileError(InputError):
    """The host's config file exists but is not a JSON object we can merge into."""


def merge_server(path: Path, host: Host, name: str, entry: dict[str, Any]) -> Path | None:
    """Put ``entry`` under ``name`` in ``path``, keeping every other key; returns the backup made.

    The file is written whole to a temporary file beside it and renamed over it, so a crash never
    leaves half a config. A file that is not a JSON object (a host's JSONC comments, say) is left
    untouched: :class:`ConfigFileError` says so.
    """
    key = _SERVERS_KEY.get(host, "mcpServers")
    config: dict[str, Any] = {}
    backup: Path | None = None
    if path.exists():
        try:
            loaded = json.loads(read_text(path, "host config file") or "{}")
        except InputError as exc:  # not UTF-8, or unreadable
            raise ConfigFileError(f"{exc}; add the block by hand") from exc
        except ValueError as exc:
            raise ConfigFileError(f"{path} is not plain JSON ({exc}); add the block by hand") from exc
        if not isinstance(loaded, dict) or not isinstance(loaded.get(key, {}), dict):
            raise ConfigFileError(f"{path}: expected a JSON object with an object under {key!r}")
        config = loaded
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    config.setdefault(key, {})[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(encode_text(json.dumps(config, indent=2) + "\n", str(path)))
    if backup is not None:
        shutil.copymode(backup, tmp)
    os.replace(tmp, path)
    return backup


@app.command("mcp-config")
def mcp_config_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Directories, files and .jsonl section files to serve (default: the sample corpus)."),
    ] = None,
    host: Annotated[Host, typer.Option("--for", help="Print the block in this host's format.")] = Host.claude_desktop,
    write: Annotated[
        Host | None, typer.Option(help="Merge the server into this host's config file (a .bak copy is kept).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="With --write: this config file instead of the host's.")] = None,
    name: Annotated[str, typer.Option(help="The server's name in the host's config.")] = "prehydrate",
) -> None:
    """Print (or --write) a host config block that starts `prehydrate serve` from any folder."""
    for p in paths or []:
        if not p.exists():
            print_error(f"no such file or directory: {str(p)!r}")
            raise typer.Exit(code=2)
    target_host = write or host
    entry = server_entry(paths or [], target_host)
    if write is None:
        print(json.dumps({_SERVERS_KEY.get(target_host, "mcpServers"): {name: entry}}, indent=2))
        return
    target = config or config_path(write)
    try:
        backup = merge_server(target, write, name, entry)
    except (ConfigFileError, OSError) as exc:
        print_error(str(exc))
        raise typer.Exit(code=2) from exc
    kept = f" (the previous file is in {backup})" if backup else ""
    err_console.print(
        f"wrote server {name!r} to {target}{kept}; restart {write.value} to load it",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
