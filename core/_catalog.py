"""The catalog: every visible section in document order, with a BM25 index for free-text requests."""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ._errors import ConfigError, NoMatchError, UnknownSectionError
from ._sections import Section

__all__ = ["Catalog", "TextIndex", "tokenize"]

_STEMMER: Any = None
_STEMMER_LOCK = threading.Lock()


def _stemmer() -> Any:
    global _STEMMER
    with _STEMMER_LOCK:
        if _STEMMER is None:
            import Stemmer  # PyStemmer: a C Snowball stemmer, so "refunds" matches "refund"

            _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER


def _bm25s() -> Any:
    import bm25s

    # bm25s pins its logger at DEBUG, which overrides the application's logging level and prints
    # "Building index..." on every server's stderr; let it inherit the application's level instead.
    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Tokenize like the catalog index does (lowercase, English stopwords, Snowball stems)."""
    if not texts:
        return []  # before the import: an empty index (an unfitted predictor's) needs no bm25s
    bm25s = _bm25s()
    out = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False)
    return [list(t) for t in out]


class TextIndex:
    """BM25 (bm25s) over a list of texts, tokenized like :func:`tokenize`; one score per text.

    The catalog indexes its sections with it, the neighbour predictor the queries of recorded turns.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self.size = len(texts)
        self._vocab: dict[str, int] = {}
        self._index: Any = None
        tokens = tokenize(texts)
        if any(tokens):
            bm25s = _bm25s()
            ids = [[self._vocab.setdefault(t, len(self._vocab)) for t in doc] for doc in tokens]
            self._index = bm25s.BM25()
            self._index.index(bm25s.tokenization.Tokenized(ids=ids, vocab=self._vocab), show_progress=False)

    def scores(self, query: str) -> Any:
        """BM25 score of every text (in order) as a float32 numpy array; zeros when no word matches."""
        import numpy as np

        words = [t for t in (tokenize([query])[0] if query.strip() else []) if t in self._vocab]
        if self._index is None or not words:
            return np.zeros(self.size, dtype=np.float32)
        return self._index.get_scores(words)


class Catalog:
    """The sections visible to the engine, in document order, searchable by free text.

    The BM25 index (bm25s) over title and the start of the content is built lazily on the first
    search, so engines that only ever request by id pay nothing for it.
    """

    def __init__(self, sections: Iterable[Section]) -> None:
        self._sections: list[Section] = []
        self._by_id: dict[str, Section] = {}
        self._pos: dict[str, int] = {}
        for s in sections:
            if s.id in self._by_id:
                other = self._by_id[s.id]
                raise ConfigError(f"section id {s.id!r} is given by both {other.source!r} and {s.source!r}")
            self._pos[s.id] = len(self._sections)
            self._by_id[s.id] = s
            self._sections.append(s)
        self._index: TextIndex | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sections)

    def __iter__(self) -> Iterator[Section]:
        return iter(self._sections)

    def __contains__(self, section_id: object) -> bool:
        return section_id in self._by_id

    @property
    def sections(self) -> Sequence[Section]:
        """All sections in document order."""
        return tuple(self._sections)

    @property
    def ids(self) -> list[str]:
        """All section ids in document order."""
        return [s.id for s in self._sections]

    def get(self, section_id: str) -> Section:
        """The section with this id.

        Raises:
            UnknownSectionError: with up to three close matches as ``suggestions``.
        """
        try:
            return self._by_id[section_id]
        except KeyError:
            raise UnknownSectionError(section_id, self.suggest(section_id)) from None

    def after(self, position: int, n: int) -> Sequence[Section]:
        """Up to ``n`` sections following ``position`` in document order (cheap on big catalogs)."""
        return self._sections[position + 1 : position + 1 + n]

    def position(self, section_id: str) -> int:
        """Index of the section in document order."""
        return self._pos[section_id]

    def replace(self, section: Section) -> None:
        """Swap in a new stub for an existing id (its version changed), keeping its position."""
        pos = self._pos[section.id]
        self._sections[pos] = section
        self._by_id[section.id] = section

    def suggest(self, key: str, n: int = 3) -> list[str]:
        """Ids close to ``key``: fuzzy string matches first, then lexical matches."""
        close = difflib.get_close_matches(key[:200], self._by_id.keys(), n=n, cutoff=0.5)
        if len(close) < n:
            for s, _ in self.search(key[:500].replace("/", " ").replace("-", " "), k=n):
                if s.id not in close:
                    close.append(s.id)
                if len(close) >= n:
                    break
        return close

    def warm(self) -> Catalog:
        """Build the lexical index now instead of on the first search; returns the catalog."""
        self._ensure_index()
        return self

    def _ensure_index(self) -> TextIndex:
        """The BM25 index over title and the start of the content, built once."""
        with self._lock:
            if self._index is None:
                self._index = TextIndex([s.index_text or s.title for s in self._sections])
            return self._index

    def score_array(self, query: str) -> Any:
        """BM25 score of every section (document order) as a float32 numpy array; zeros on no match."""
        return self._ensure_index().scores(query)

    def scores(self, query: str) -> list[float]:
        """BM25 score of every section (document order) for ``query``; zeros when nothing matches."""
        return [float(x) for x in self.score_array(query)]

    def search(self, query: str, k: int = 5) -> list[tuple[Section, float]]:
        """The best ``k`` sections for ``query`` with their BM25 scores (only positive scores)."""
        import numpy as np

        scores = self.score_array(query)
        n = len(scores)
        if n == 0 or k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        ranked = sorted((int(i) for i in top), key=lambda i: (-float(scores[i]), i))
        return [(self._sections[i], float(scores[i])) for i in ranked if scores[i] > 0]

    def resolve(self, query: str) -> Section:
        """The single best section for a free-text request.

        Raises:
            NoMatchError: no section shares a word with the query.
        """
        hits = self.search(query, k=1)
        if not hits:
            raise NoMatchError(query)
        return hits[0][0]
