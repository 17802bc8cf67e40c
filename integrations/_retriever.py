"""Any LangChain ``BaseRetriever`` as a prehydrate source.

A retriever answers queries, while prehydrate works with sections. ``RetrieverSource`` turns a set
of declared queries into sections: each query is a section (its id given or derived), and
hydrating it runs the query through the retriever and joins the documents. That lets the
predictor prefetch retrieval results (a vector search, a web search, a SQL lookup) like any other
section, and the warm cache serve them.

Example:
    >>> src = RetrieverSource(retriever, {"billing/refunds": "refund policy"})  # doctest: +SKIP
    >>> engine = ph.Engine(sources=[src])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

import prehydrate as ph

__all__ = ["RetrieverSource", "join_documents"]


def join_documents(docs: Sequence[Document]) -> str:
    """Documents as one text: page contents separated by blank lines, empty ones left out."""
    return "\n\n".join(d.page_content.strip() for d in docs if d.page_content.strip())


class RetrieverSource:
    """A ``BaseRetriever`` with declared queries, as a :class:`prehydrate.Source`.

    Retrieval is read-only, so the source is speculative (safe to prefetch) by default. The
    version of a section is a hash of its joined content, so when the retriever's results change
    the engine notices and never serves the old text as current.
    """

    def __init__(
        self,
        retriever: BaseRetriever,
        queries: Mapping[str, str] | Iterable[str],
        *,
        name: str = "retriever",
        speculative: bool = True,
        titles: Mapping[str, str] | None = None,
        tags: Mapping[str, Sequence[str]] | None = None,
        join: Callable[[Sequence[Document]], str] = join_documents,
    ) -> None:
        """Declare the queries.

        Args:
            retriever: any LangChain retriever (called with ``ainvoke``).
            queries: ``{section_id: query}``, or a list of queries (each query is its own id).
            name: the source name (shown in stubs and events).
            speculative: whether prefetching is allowed (retrievers are read-only; turn off for ones
                that bill per call or have side effects).
            titles: section titles (default: the query).
            tags: section tags.
            join: turns the retrieved documents into the section's content.

        Raises:
            ConfigError: no queries, or an empty query.
            InputError: a section id is malformed.
        """
        pairs = dict(queries) if isinstance(queries, Mapping) else {q: q for q in queries}
        if not pairs:
            raise ph.ConfigError("a RetrieverSource needs at least one query")
        self.retriever = retriever
        self.name = name
        self.speculative = speculative
        self.join = join
        self.queries: dict[str, str] = {}
        self._sections: list[ph.Section] = []
        titles = titles or {}
        tags = tags or {}
        for order, (sid, query) in enumerate(pairs.items()):
            ph.check_section_id(sid)
            if not isinstance(query, str) or not query.strip():
                raise ph.ConfigError(f"the query of section {sid!r} must be a non-empty string")
            self.queries[sid] = query
            title = titles.get(sid, query)
            self._sections.append(
                ph.Section(
                    id=sid,
                    title=title,
                    tags=tuple(tags.get(sid, ())),
                    summary=f"retrieved for: {ph.one_line_summary(query)}",
                    index_text=f"{title}\n{query}",
                    order=order,
                    source=name,
                )
            )

    def list_sections(self) -> Sequence[ph.Section]:
        """One section per declared query (size and version are known only after hydration)."""
        return list(self._sections)

    async def hydrate(self, section_id: str, *, scope: ph.Scope) -> ph.Hydrated:
        """Run the section's query and join the documents.

        Raises:
            UnknownSectionError: ``section_id`` is not a declared query.
            SourceError: the retriever failed.
        """
        try:
            query = self.queries[section_id]
        except KeyError:
            raise ph.UnknownSectionError(section_id) from None
        try:
            docs = await self.retriever.ainvoke(query)
        except ph.PrehydrateError:
            raise
        except Exception as exc:  # the retriever's own failure, with context; the cause is kept
            raise ph.SourceError(
                f"retriever {self.name!r} failed for {section_id!r}: {type(exc).__name__}: {exc}",
                section_id=section_id,
                source=self.name,
            ) from exc
        content = self.join(docs)
        return ph.Hydrated(section_id=section_id, content=content, version=ph.content_version(content))

    async def aclose(self) -> None:
        """Nothing to release (the retriever owns its connections)."""
        return None
