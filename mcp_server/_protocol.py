"""Protocol hygiene around the MCP server: argument checks, completions and ``logging/setLevel``.

- **Arguments are checked before the SDK sees them.** A misspelled tool argument (``{"sect": ...}``)
  is an error naming it (the SDK would drop it silently), and a wrong type is one sentence naming the
  argument and the type expected (the SDK would return pydantic's text with its documentation URL).
  Both are tool errors (``isError: true``), which a model can read and act on.
- **A bad prompt call is a protocol error ``-32602`` (invalid params), answered at once**: an unknown
  prompt, a missing or unknown argument. The SDK would raise inside the handler and answer with
  error code 0 after logging a traceback.
- **``completion/complete``** completes section ids for the ``prehydrate://sections/{+id}`` template
  and the task types seen in recorded sessions for the ``compiled_context`` prompt's ``task``.
- **``resources/subscribe``** / **``resources/unsubscribe``** (handshake era) and
  ``subscriptions/listen`` (2026-07-28) deliver section changes (see ``_subscriptions``).
- **``logging/setLevel``** is accepted (hosts send it when the server advertises logging). The server
  sends no log notifications to clients, its logs go to stderr; the level asked for is kept.

The checks run as ``MCPServer`` middleware (``server.middleware``), inside the SDK's OpenTelemetry
span, so a refused call is still traced.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    EmptyResult,
    PromptReference,
    ResourceTemplateReference,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    UnsubscribeRequestParams,
)

import prehydrate as ph
from prehydrate.mcp_server._subscriptions import SectionNotifier

__all__ = ["ArgumentCheck", "LogLevelState", "ProtocolServer", "install_protocol", "recorded_task_types"]

MAX_COMPLETIONS = 100
"""The most values one ``completion/complete`` answer carries (the spec's limit)."""

_JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
_NAMES = {"string": "a string", "boolean": "true or false", "integer": "an integer", "number": "a number",
          "array": "a list", "object": "an object", "null": "null"}  # fmt: skip


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPE.items() if type(value) is kind), "object")


def _allowed_types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a property schema accepts (``type`` or ``anyOf`` of types); empty: anything."""
    options = schema.get("anyOf") or [schema]
    kinds: set[str] = set()
    for option in options:
        kind = option.get("type") if isinstance(option, Mapping) else None
        if kind is None:
            return set()
        kinds.update([kind] if isinstance(kind, str) else kind)
    if "number" in kinds:
        kinds.add("integer")
    return kinds


def _unknown(name: str, known: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    takes = ", ".join(f"`{k}`" for k in known) or "no arguments"
    return f"Unknown argument `{name}` for {what}, which takes {takes}.{hint}"


def check_tool_arguments(tool: str, arguments: object, schema: Mapping[str, Any]) -> str | None:
    """One sentence saying what is wrong with ``arguments`` for ``tool``, or None when they fit."""
    if arguments is None:
        return None
    if not isinstance(arguments, Mapping):
        return f"The arguments of {tool} must be an object of named arguments, not {_NAMES[_json_type(arguments)]}."
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name, value in arguments.items():
        if name not in properties:
            return _unknown(str(name), list(properties), tool)
        allowed = _allowed_types(properties[name])
        got = _json_type(value)
        if allowed and got not in allowed:
            expected = " or ".join(_NAMES.get(k, k) for k in sorted(allowed, key=list(_NAMES).index))
            return f"The argument `{name}` of {tool} must be {expected}, not {_NAMES[got]}."
    return None


class ArgumentCheck:
    """Middleware: refuse ill-formed ``tools/call`` and ``prompts/get`` before the SDK handles them."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server
        self._tools: dict[str, Mapping[str, Any]] | None = None
        self._prompts: dict[str, tuple[list[str], list[str]]] | None = None

    async def _tool_schemas(self) -> dict[str, Mapping[str, Any]]:
        if self._tools is None:  # the tools are fixed once the server runs: read their schemas once
            self._tools = {t.name: t.input_schema for t in await self.server.list_tools()}
        return self._tools

    async def _prompt_arguments(self) -> dict[str, tuple[list[str], list[str]]]:
        if self._prompts is None:
            self._prompts = {
                p.name: ([a.name for a in p.arguments or []], [a.name for a in p.arguments or [] if a.required])
                for p in await self.server.list_prompts()
            }
        return self._prompts

    async def _check_prompt(self, params: Mapping[str, Any]) -> None:
        prompts = await self._prompt_arguments()
        name = params.get("name")
        if not isinstance(name, str) or name not in prompts:
            offered = ", ".join(repr(p) for p in prompts)
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt {name!r}; this server offers {offered}.")
        known, required = prompts[name]
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise MCPError(code=INVALID_PARAMS, message=f"The arguments of prompt {name!r} must be an object.")
        for arg, value in arguments.items():
            if arg not in known:
                raise MCPError(code=INVALID_PARAMS, message=_unknown(str(arg), known, f"prompt {name!r}"))
            if not isinstance(value, str):
                message = f"The argument `{arg}` of prompt {name!r} must be a string, not {_NAMES[_json_type(value)]}."
                raise MCPError(code=INVALID_PARAMS, message=message)
        missing = [a for a in required if a not in arguments]
        if missing:
            needed = ", ".join(f"`{a}`" for a in missing)
            raise MCPError(code=INVALID_PARAMS, message=f"Prompt {name!r} needs the argument(s) {needed}.")

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params: Mapping[str, Any] = ctx.params if isinstance(ctx.params, Mapping) else {}
        if ctx.method == "tools/call":
            schemas = await self._tool_schemas()
            name = params.get("name")
            if isinstance(name, str) and name in schemas:
                problem = check_tool_arguments(name, params.get("arguments"), schemas[name])
                if problem is not None:
                    return CallToolResult(is_error=True, content=[TextContent(type="text", text=problem)])
        elif ctx.method == "prompts/get":
            await self._check_prompt(params)
        return await call_next(ctx)


class LogLevelState:
    """What a client asked with ``logging/setLevel`` (kept; the server logs to stderr only)."""

    def __init__(self) -> None:
        self.level: str | None = None

    async def set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        self.level = params.level
        return EmptyResult()


class ProtocolServer(MCPServer[Any]):
    """An ``MCPServer`` that also answers ``logging/setLevel`` and ``resources/(un)subscribe``.

    ``MCPServer`` has no public hook for these methods (deprecated in the 2026-07-28 era, still sent
    by hosts of the handshake era when the capability is advertised); its low-level server has one.
    The handshake-era ``resources.listChanged`` capability is advertised too (the SDK derives it
    from options its runners do not pass), and ``subscriptions/listen`` (2026-07-28) runs on the
    bus given as ``subscriptions`` (in memory by default). ``notifier`` sends the notifications.
    """

    def __init__(self, *args: Any, subscriptions: SubscriptionBus | None = None, **kwargs: Any) -> None:
        bus = subscriptions if subscriptions is not None else InMemorySubscriptionBus()
        super().__init__(*args, subscriptions=bus, **kwargs)
        self.log_levels = LogLevelState()
        self.notifier = SectionNotifier(bus)
        low = self._lowlevel_server
        low.add_request_handler("logging/setLevel", SetLevelRequestParams, self.log_levels.set_level)
        low.add_request_handler("resources/subscribe", SubscribeRequestParams, self.notifier.subscribe)
        low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self.notifier.unsubscribe)
        self.middleware.append(self.notifier.seen)
        make_options = low.create_initialization_options

        def options(
            notification_options: NotificationOptions | None = None,
            experimental_capabilities: dict[str, dict[str, Any]] | None = None,
            extensions: dict[str, dict[str, Any]] | None = None,
        ) -> InitializationOptions:
            notify = notification_options or NotificationOptions(resources_changed=True)
            return make_options(notify, experimental_capabilities, extensions)

        low.create_initialization_options = options  # type: ignore[method-assign]


def _complete(values: Iterable[str], prefix: str) -> Completion:
    """Values starting with ``prefix`` first, then those containing it, at most :data:`MAX_COMPLETIONS`."""
    folded = prefix.casefold()
    starts = [v for v in values if v.casefold().startswith(folded)]
    inside = [v for v in values if folded in v.casefold() and not v.casefold().startswith(folded)]
    found = starts + inside
    return Completion(values=found[:MAX_COMPLETIONS], total=len(found), has_more=len(found) > MAX_COMPLETIONS)


def recorded_task_types(engine: ph.Engine) -> list[str]:
    """The task types of the sessions in the engine's trace store (read on each completion: rare)."""
    if engine.traces is None:
        return []
    return sorted({t.task.type for t in engine.traces.load() if t.task.type})


def install_protocol(
    server: MCPServer[Any],
    *,
    section_ids: Callable[[], Sequence[str]],
    task_types: Callable[[], Sequence[str]],
    section_template: str,
    prompt: str,
) -> None:
    """Add the argument checks and completions to a server made by ``create_server``."""
    server.middleware.append(ArgumentCheck(server))

    @server.completion()  # type: ignore[untyped-decorator,no-untyped-call]  # the SDK leaves it untyped
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if isinstance(ref, ResourceTemplateReference) and ref.uri == section_template and argument.name == "id":
            return _complete(section_ids(), argument.value)
        if isinstance(ref, PromptReference) and ref.name == prompt and argument.name == "task":
            return _complete(task_types(), argument.value)
        return None
