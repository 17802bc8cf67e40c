"""The one rooted error hierarchy of prehydrate.

Every error the package raises on purpose derives from :class:`PrehydrateError`, so a caller can
catch one type at the edge (an MCP tool, a LangChain tool, the CLI) and turn it into a clear
message. Errors carry the context a caller needs to act on them as attributes::

    PrehydrateError
    ├── ConfigError                  bad arguments or settings given to prehydrate itself
    ├── InputError                   bad input from a user or a file
    │   ├── MalformedInputError      .path, .line: a file line that does not parse
    │   ├── ModelFileError           a persisted model that is damaged or of another version
    │   ├── PathTraversalError       .path: a path that would leave a source's root
    │   └── RequestTooLargeError     .size, .limit: an oversized id, query or entry
    ├── UnknownSectionError          .key, .suggestions: no such section (also a KeyError)
    ├── NoMatchError                 .query: a free-text request matched no section
    ├── SourceError                  .section_id, .source: hydration failed
    │   └── HydrationTimeout         hydration took longer than the policy allows
    └── CacheError                   .tier: a cache tier failed (callers fall back to the source)

A bailout is an expected outcome, not an error: leaving a turn returns a ``TurnReport``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BusyError",
    "CacheError",
    "ConfigError",
    "HydrationTimeout",
    "InputError",
    "MalformedInputError",
    "ModelFileError",
    "NoMatchError",
    "PathTraversalError",
    "PrehydrateError",
    "RequestTooLargeError",
    "SourceError",
    "UnknownSectionError",
]


class PrehydrateError(Exception):
    """Root of every error prehydrate raises on purpose."""


class ConfigError(PrehydrateError):
    """Invalid configuration or arguments given to prehydrate."""


class InputError(PrehydrateError):
    """Invalid input: a file, an id, a query or a payload that prehydrate refuses."""


class ModelFileError(InputError):
    """A persisted model that cannot be used (damaged, from another version or another predictor)."""


class MalformedInputError(InputError):
    """A line of an input file does not parse; names the file and the 1-based line."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")


class PathTraversalError(InputError):
    """A path would resolve outside the root of a source (``..``, absolute or escaping symlink)."""

    def __init__(self, path: str, root: str | None) -> None:
        self.path = path
        self.root = root
        """The source's root, or None when the id was refused by its shape alone, before any source."""
        if root is None:
            message = f"section id {path!r} is not allowed: ids are catalog keys, not file paths ('..' and absolute paths are refused)"  # noqa: E501
        else:
            message = f"path {path!r} resolves outside the source root {root!r}"
        super().__init__(message)


class RequestTooLargeError(InputError):
    """An id, query or value exceeds a configured size limit."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(f"{what} is {size} bytes, over the limit of {limit} bytes")


class UnknownSectionError(PrehydrateError, KeyError):
    """No section with this id is visible; ``suggestions`` lists close matches."""

    def __init__(self, key: str, suggestions: Sequence[str] = ()) -> None:
        self.key = key
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if suggestions else ""
        super().__init__(f"unknown section {key!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class NoMatchError(PrehydrateError):
    """A free-text request matched no section of the catalog."""

    def __init__(self, query: str) -> None:
        self.query = query
        shown = query if len(query) <= 80 else query[:77] + "..."
        super().__init__(f"no section matches the query {shown!r}")


class SourceError(PrehydrateError):
    """A source failed to list or hydrate a section."""

    def __init__(self, message: str, *, section_id: str | None = None, source: str | None = None) -> None:
        self.section_id = section_id
        self.source = source
        super().__init__(message)


class HydrationTimeout(SourceError):
    """Hydrating a section took longer than the configured timeout."""


class CacheError(PrehydrateError):
    """A cache tier failed; the warm cache treats this as a miss and keeps serving."""

    def __init__(self, message: str, *, tier: str) -> None:
        self.tier = tier
        super().__init__(message)


class BusyError(PrehydrateError):
    """Too much work in progress: the call was refused at once instead of queued. Retry shortly."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        super().__init__(f"the server is busy: {limit} {what} are in progress (the limit); retry in a moment")
