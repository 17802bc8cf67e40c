"""The learning lifecycle: which predictor serves a tenant, and when it is fitted again.

A server learns from the sessions it records. Three rules shape how:

- **Tenant-private.** By default each tenant's predictor learns only from that tenant's sessions
  (the TraceStore keeps them in a file of their own), plus a corpus the operator shares with every
  tenant on purpose (:meth:`Learning.share`, ``prehydrate serve --learn FILE``). One tenant's
  access pattern never shapes another tenant's prefetches.
- **Never in the way of serving.** A fit reads a bounded window of recent sessions and runs in a
  worker thread; the fitted state is swapped in as a whole (the predictor's own ``fit`` replaces
  its state under its lock, or a new object is installed for a tenant without one), so a
  prediction sees the old model or the new one, never half of each. A tenant's model in memory is
  refitted in place, like the default one, so what it learned online from graph runs (which its
  recorded sessions cannot teach again) survives the refit. With ``wait_at_start=False`` (what
  ``prehydrate serve`` uses) the engine starts without waiting for any fit: it serves with the last
  persisted model, or unfitted, meanwhile.
- **Online.** A finished session schedules a refit of its tenant ``refit_delay_s`` later, unless
  one is already due (a burst of sessions causes one refit, and steady traffic cannot postpone it
  forever); refits of a tenant are spaced by at least four fit durations, so learning takes at most
  a fifth of a core.

With ``model_dir`` set, every fitted model is persisted (see :mod:`prehydrate._models`) and loaded
at the next start before any refit; a damaged or incompatible file is refused with a one-sentence
warning and the tenant is refitted. What a model learned online from graph runs is in its file too
(no trace can teach it again): a model that learned runs since its last save is saved by ``close``
and, once evicted, by the worker; a fit reads the tenant's file first if its model has not; a run
that ends while its tenant's model is away is kept and learned once the model is back. A start
reads only the ``max_tenant_models`` most recently saved
files (what memory would keep anyway); another tenant's file is read, and its start fit done, on
that tenant's first request.

At most ``max_tenant_models`` tenants' predictors are kept in memory, the least recently used
evicted first (a flood of tenant names cannot exhaust memory). An evicted tenant is served by the
shared unfitted predictor while the worker brings its model back: loaded from its persisted file
when there is one, else refitted from its recorded sessions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._catalog import Catalog
from ._errors import ConfigError, ModelFileError
from ._models import Persistable, load_model, save_model
from ._predict import Learner, Predictor
from ._sections import DEFAULT_TENANT
from ._trace_store import TraceStore, tenant_file_stem
from ._traces import SessionTrace
from ._workflow import FinishedTurn, TurnObserver

__all__ = ["Learning", "LearningPolicy"]

logger = logging.getLogger("prehydrate.learning")

_SHARED = "\x00shared"
"""The worker's job name for fitting the shared corpus alone (never a tenant: tenants have no NUL)."""

_SAVE = "\x00save"
"""The worker's job name for saving evicted models that learned graph runs since their last save."""

MAX_PENDING_RUNS = 256
"""Graph runs kept per tenant while its model is away (evicted, or its file not read yet); older dropped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LearningPolicy:
    """How an engine learns from its TraceStore (defaults: private, online, waits at start)."""

    private: bool = True
    """Each tenant learns only from its own sessions (plus the shared corpus). False: one predictor
    fitted on every tenant's sessions serves all of them."""
    wait_at_start: bool = True
    """``Engine.start()`` waits for the first fit. False: it returns at once and fits in the background."""
    online: bool = True
    """Refit a tenant's predictor in the background after its sessions finish."""
    refit_delay_s: float = 30.0
    """Online refits: a tenant is refitted this long after the first session finished since its last
    fit (a burst of sessions causes one refit), and never sooner than four fit durations after it."""
    model_dir: Path | None = None
    """Persist fitted models here and load them at start (None: nothing is persisted)."""
    max_tenant_models: int = 256
    """Tenants whose predictors are kept in memory at most, least recently used evicted first. An
    evicted tenant's model comes back on its next request (from ``model_dir``, else refitted). A start
    loads this many persisted models, the most recently saved; the others on their tenant's first use."""

    def __post_init__(self) -> None:
        if self.refit_delay_s < 0:
            raise ConfigError("LearningPolicy: refit_delay_s must not be negative")
        if self.max_tenant_models < 1:
            raise ConfigError("LearningPolicy: max_tenant_models must be at least 1")


def _factory_for(predictor: Predictor) -> Callable[[], Predictor] | None:
    """How to make another, unfitted predictor configured like ``predictor`` (its ``fresh()``), if any.

    A predictor without ``fresh()`` cannot be copied faithfully, so it serves every tenant (and is
    fitted on every tenant's sessions), as if ``private`` were off; a warning says so once.
    """
    make = getattr(predictor, "fresh", None)
    if callable(make):
        return lambda: make()
    logger.warning("%s has no fresh(): one predictor learns from every tenant's sessions", type(predictor).__name__)
    return None


class Learning:
    """Per-tenant predictors, their fits, persistence and online refits (see the module docstring).

    Args:
        default: returns the engine's predictor; it serves the default tenant (and every tenant
            when learning is not private or no fresh predictor can be made) and is fitted in place.
        store: where sessions are recorded (None: nothing to learn from).
        policy: the rules above.
    """

    def __init__(self, default: Callable[[], Predictor], store: TraceStore | None, policy: LearningPolicy) -> None:
        self._default = default
        self.store = store
        self.policy = policy
        self._made_for: Predictor | None = None
        self._factory_cache: Callable[[], Predictor] | None = None
        self._models: OrderedDict[str, Predictor] = OrderedDict()
        """Tenants' own predictors, least recently used first; guarded by ``_cond``."""
        self._evicted: set[str] = set()
        """Tenants whose model was evicted: their next request brings it back."""
        self._deferred: set[str] = set()
        """Tenants whose model file a start left unread: their first use loads it, then fits them."""
        self._pending: dict[str, deque[FinishedTurn]] = {}
        """Graph runs a tenant's model must still learn: it was away when they ended (its file is loaded
        first, then they are applied). The default tenant learns them at once too (a load replaces them)."""
        self._read: set[str] = set()
        """Tenants whose model in memory holds what their model file holds (read it, or wrote it)."""
        self._unsaved: set[str] = set()
        """Tenants whose model learned graph runs online since it was last saved (``close`` saves them)."""
        self._parked: dict[str, Predictor] = {}
        """Evicted models that learned graph runs since they were last saved: the worker saves them, and
        a tenant that comes back meanwhile gets its model again (its file does not hold those runs)."""
        self._busy: set[str] = set()
        """Tenants whose model is being loaded or fitted now (a run of theirs waits for that model)."""
        self._sessions: dict[str, int] = {}
        """Sessions each tenant's model was last fitted on (what its model file records)."""
        self._save_lock = threading.Lock()
        self._shared: tuple[SessionTrace, ...] = ()
        self._blank: Predictor | None = None
        self._shared_model: Predictor | None = None
        """Fitted on the shared corpus alone: what a tenant without sessions of its own gets."""
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}
        self._worker: threading.Thread | None = None
        self._stop = False
        self._fit_lock = threading.Lock()
        self._catalog: Callable[[], Catalog] | None = None
        self._fitted_here: set[str] = set()
        self._last_fit: dict[str, tuple[float, float]] = {}
        """Per tenant: when its last fit ended and how long it took (monotonic seconds)."""
        self.fits = 0
        """Fits completed so far (all tenants); tests and dashboards watch it."""
        if store is not None and policy.online:
            store.subscribe(self._recorded)

    @property
    def default(self) -> Predictor:
        """The engine's predictor as it is now (front ends may replace it after construction)."""
        return self._default()

    @property
    def _factory(self) -> Callable[[], Predictor] | None:
        """Makes unfitted predictors like the default one, for other tenants (None: not private)."""
        if not self.policy.private:
            return None
        default = self.default
        if self._made_for is not default:
            self._made_for, self._factory_cache = default, _factory_for(default)
        return self._factory_cache

    @property
    def learns(self) -> bool:
        """Whether there is anything to learn with: a store and a predictor that fits."""
        return (self.store is not None or bool(self._shared)) and isinstance(self.default, Learner)

    def share(self, traces: Sequence[SessionTrace]) -> None:
        """Sessions every tenant's predictor learns from as well (an operator's curated corpus)."""
        self._shared = tuple(traces)

    def predictor_for(self, tenant: str) -> Predictor:
        """The predictor that serves ``tenant`` now."""
        if tenant == DEFAULT_TENANT or self._factory is None or not self.learns:
            return self.default  # no store to learn from: the predictor is the caller's, fitted by them
        with self._cond:
            own = self._models.get(tenant)
            if own is not None:
                self._models.move_to_end(tenant)
                return own
            if tenant in self._evicted:  # the worker brings it back; unfitted meanwhile
                if self._due.get(tenant, 0.0) > 0.0:  # a refit is due (not just this job): moved up, it brings
                    self._evicted.discard(tenant)  # the model back with every session in it
                self._schedule(tenant)
            model = self._shared_model
            if model is None and self._shared:
                self._schedule(_SHARED)  # fitted on first need: most servers never have such a tenant
        model = model or self._blank
        if model is None:
            # Unfitted (lexical and document order only, nothing of any tenant), shared by every
            # tenant without a model of its own, so a flood of new tenant names costs one object.
            model = self._blank = self._factory()
        return model

    def observe(self, tenant: str, turn: FinishedTurn) -> None:
        """Teach ``tenant``'s predictor one finished graph run (online learning), and no one else's.

        A tenant still served by the shared unfitted (or shared-corpus) predictor first gets one of
        its own, so what its run teaches reaches neither the other tenants nor the default one. A
        tenant whose model is away (evicted, being fitted, or its model file not read yet) keeps the
        run until the model is back, then the model learns it: a new, empty model never replaces
        the fitted one, and the run is not lost (its recorded session holds neither the graph nor
        the router's branch, so no refit could teach it again).
        """
        if not self.learns:
            model = self.default
        else:
            key = tenant if tenant != DEFAULT_TENANT and self._factory is not None else DEFAULT_TENANT
            found = self._observer_for(key, turn)
            if found is None:
                return  # kept: the model learns the run once it is back
            model = found
        if isinstance(model, TurnObserver):
            model.observe_turn(turn)
            if self.learns and self.policy.model_dir is not None:
                with self._cond:
                    self._unsaved.add(key)

    def _observer_for(self, key: str, turn: FinishedTurn) -> Predictor | None:
        """The model that learns ``key``'s run now, or None when the run is kept until its model is back."""
        path = self.model_path(key)
        unread = key not in self._read and path is not None and path.exists()
        with self._cond:
            if key == DEFAULT_TENANT:
                if unread:  # learned now and again once the file is loaded (the load replaces it)
                    self._keep(key, turn)
                return self.default
            found = self._models.get(key)
            if found is None and key in self._busy:  # being loaded or fitted: that model learns it
                self._keep(key, turn)
                return None
            if found is None and (unread or key in self._evicted):
                self._keep(key, turn)
                self._evicted.add(key)
                self._schedule(key)  # a new model would replace its fitted one: bring that back instead
                return None
        if found is None:
            found = self._factory() if self._factory is not None else self.default
            self._install(key, found)
        return found

    def _keep(self, key: str, turn: FinishedTurn) -> None:
        """Keep a run for ``key``'s model until it is back; holds ``_cond``."""
        self._pending.setdefault(key, deque(maxlen=MAX_PENDING_RUNS)).append(turn)

    def _catch_up(self, key: str, model: Predictor) -> None:
        """Teach ``model`` (back in memory now) the runs ``key`` kept for it."""
        with self._cond:
            runs = self._pending.pop(key, ())
            if runs and self.policy.model_dir is not None:
                self._unsaved.add(key)
        if isinstance(model, TurnObserver):
            for run in runs:
                model.observe_turn(run)

    # -- fitting -----------------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Tenants with recorded sessions (only the default one when learning is not private)."""
        if self.store is None:
            return []
        if self._factory is None:
            return [DEFAULT_TENANT]
        return self.store.tenants() or [DEFAULT_TENANT]

    def window(self, tenant: str) -> list[SessionTrace]:
        """What a fit of ``tenant`` learns from: the shared corpus and its recent sessions."""
        if self.store is None:
            return list(self._shared)
        if self._factory is None:
            mine = self.store.load(limit=self.store.retention.fit_window)
        else:
            mine = self.store.recent(tenant)
        return [*self._shared, *mine]

    def fit(self, catalog: Catalog, tenant: str = DEFAULT_TENANT) -> int:
        """Fit ``tenant``'s predictor now (in this thread), swap it in and persist it; returns sessions used."""
        if not self.learns:
            return 0
        with self._fit_lock:  # one fit at a time: a fit is CPU-bound, two would only slow each other
            with self._cond:  # this fit reads every session recorded so far: a refit due for them is done
                if self._due.get(tenant, 0.0) > time.monotonic():
                    del self._due[tenant]
                self._deferred.discard(tenant)  # and it is the start fit a restore put off, if any
            began = time.monotonic()
            traces = self.window(tenant)
            if not traces:
                return 0
            with self._cond:
                self._busy.add(tenant)
            try:
                model = self._refitted(tenant)
                assert isinstance(model, Learner)
                model.fit(traces, catalog)  # replaces its fitted state under its lock, keeps its online learning
                if model is not self.default:
                    self._install(tenant, model)  # a new model is swapped in whole: readers see the old or the new
            finally:
                with self._cond:
                    self._busy.discard(tenant)
            self.fits += 1
            self._fitted_here.add(tenant)
            self._last_fit[tenant] = (time.monotonic(), time.monotonic() - began)
        self._persist(tenant, model, len(traces))
        return len(traces)

    def _refitted(self, tenant: str) -> Predictor:
        """The predictor a fit of ``tenant`` fits: the one serving it, or a new one when it has none.

        Refitting in place keeps what the predictor learned online (a graph run's branch choices,
        which no recorded session holds); a new one is made only for a tenant without its own. A
        model that has not read its tenant's model file yet reads it first, so the saved fit never
        drops what the file holds and no trace can teach again.
        """
        if tenant == DEFAULT_TENANT or self._factory is None:
            model = self.default
        else:
            with self._cond:
                own = self._models.get(tenant)
                if own is None and tenant in self._parked:
                    own = self._parked.pop(tenant)
                    self._read.add(tenant)  # evicted before it was saved: it holds more than its file
            model = own if own is not None else self._factory()
        path = self.model_path(tenant)
        if tenant not in self._read and path is not None and isinstance(model, Persistable) and path.exists():
            self._read_file(tenant, model, path)
            if model is self.default:
                self._catch_up(tenant, model)  # another tenant's new model learns them when installed
        return model

    def fit_all(self, catalog: Catalog) -> int:
        """Fit every tenant's predictor (and the shared corpus's); returns the sessions used in all."""
        self._fit_shared(catalog)
        return sum(self.fit(catalog, t) for t in self.tenants())

    def _fit_shared(self, catalog: Catalog) -> None:
        if self._shared and self._factory is not None:
            model = self._factory()
            assert isinstance(model, Learner)
            model.fit(self._shared, catalog)
            self._shared_model = model

    # -- persistence -------------------------------------------------------------------------------

    def model_path(self, tenant: str) -> Path | None:
        """Where ``tenant``'s fitted model is persisted (None without ``model_dir``)."""
        if self.policy.model_dir is None:
            return None
        return self.policy.model_dir / f"{tenant_file_stem(tenant)}.model.json.gz"

    def _persist(self, tenant: str, model: Predictor, sessions: int) -> None:
        path = self.model_path(tenant)
        if path is None or not isinstance(model, Persistable):
            return
        with self._cond:
            self._unsaved.discard(tenant)  # before the state is taken: a run learned meanwhile marks it again
            self._sessions[tenant] = sessions
        try:
            with self._save_lock:  # one writer at a time (``close`` may save while a fit's thread does)
                save_model(model, path, sessions=sessions)
        except OSError as exc:
            logger.warning("cannot save the model of tenant %r to %s (%s)", tenant, path, exc.strerror or exc)
            with self._cond:
                self._unsaved.add(tenant)  # still unsaved: the next save (or ``close``) tries again
            return
        with self._cond:
            if model is self.default or self._models.get(tenant) is model:
                self._read.add(tenant)  # the model serving it holds what its file holds

    def save_unsaved(self) -> list[str]:
        """Save the models in memory that learned graph runs since they were last saved; returns their tenants.

        ``close`` calls it, so the runs of a server's last minutes survive a restart.
        """
        with self._cond:
            tenants = sorted(self._unsaved)
            found = [(t, self._models.get(t) or self._parked.get(t)) for t in tenants if t != DEFAULT_TENANT]
            models = [(DEFAULT_TENANT, self.default)] if DEFAULT_TENANT in self._unsaved else []
        saved = []
        for tenant, model in [*models, *found]:
            if model is not None:
                self._persist(tenant, model, self._sessions.get(tenant, 0))
                saved.append(tenant)
        self._unpark()
        return saved

    def _save_parked(self) -> None:
        """Save the evicted models that learned graph runs since their last save, then let them go."""
        with self._cond:
            parked = list(self._parked.items())
        for tenant, model in parked:
            self._persist(tenant, model, self._sessions.get(tenant, 0))
        self._unpark()

    def _unpark(self) -> None:
        """Let go of the parked models that are saved now (a run learned meanwhile keeps one parked)."""
        with self._cond:
            for tenant in [t for t in self._parked if t not in self._unsaved]:
                del self._parked[tenant]

    def restore(self) -> list[str]:
        """Load the persisted models of known tenants at start; returns the tenants restored.

        Only the ``max_tenant_models`` most recently saved files are read (memory would evict the
        others anyway); the other tenants are left as if evicted and not fitted now: a tenant's
        first request loads its file, then fits it. A damaged or incompatible file is refused with
        a one-sentence warning (the tenant keeps its unfitted predictor until its refit).
        """
        saved: list[tuple[float, str]] = []
        for tenant in self.tenants():
            path = self.model_path(tenant)
            if tenant in self._fitted_here or path is None:
                continue
            try:
                saved.append((path.stat().st_mtime, tenant))
            except OSError:  # none saved yet (or unreadable): the tenant is fitted
                continue
        saved.sort(key=lambda x: (-x[0], x[1]))  # most recently saved first (ties by name, for a stable start)
        default = [t for _, t in saved if t == DEFAULT_TENANT or self._factory is None]
        others = [t for _, t in saved if t not in default]
        keep, later = others[: self.policy.max_tenant_models], others[self.policy.max_tenant_models :]
        with self._cond:
            for tenant in later:
                if tenant not in self._models:
                    self._evicted.add(tenant)
                    self._deferred.add(tenant)
                    self._due.pop(tenant, None)  # its start fit waits for its first use
        # The newest last, so it ends up the most recently used.
        return [t for t in [*default, *reversed(keep)] if self._load(t)]

    def _load(self, tenant: str) -> bool:
        """Load ``tenant``'s persisted model and make it serve; False when there is none to load."""
        path = self.model_path(tenant)
        if path is None:
            return False
        if self._unpark_one(tenant):
            return True
        if not path.exists():
            return False
        if tenant == DEFAULT_TENANT or self._factory is None:
            fresh = self.default
        else:  # into the model serving it, if any: what it learned online (graph runs) is kept
            with self._cond:
                own = self._models.get(tenant)
                self._busy.add(tenant)
            fresh = own if own is not None else self._factory()
        try:
            loaded = isinstance(fresh, Persistable) and self._read_file(tenant, fresh, path)
            if fresh is self.default:
                self._catch_up(tenant, fresh)  # the load replaced the runs it learned meanwhile: again
            elif loaded:
                self._install(tenant, fresh)  # which teaches it the runs kept for it
        finally:
            with self._cond:
                self._busy.discard(tenant)
        return loaded

    def _unpark_one(self, tenant: str) -> bool:
        """Make ``tenant``'s parked model (evicted before it was saved) serve again, as it was."""
        with self._cond:
            model = self._parked.pop(tenant, None) if tenant not in self._models else None
            if model is not None:
                self._read.add(tenant)  # it holds more than its file
                self._busy.add(tenant)  # a run ending now waits for it (``_install`` ends that)
        if model is None:
            return False
        self._install(tenant, model)
        return True

    def _read_file(self, tenant: str, model: Persistable, path: Path) -> bool:
        """Load ``tenant``'s model file into ``model``; a damaged one is refused with a warning."""
        try:
            sessions = load_model(model, path)
        except FileNotFoundError:
            return False
        except ModelFileError as exc:
            logger.warning("%s; refitting instead", exc)
            with self._cond:
                self._read.add(tenant)  # read once: the refit writes a good file over it
            return False
        with self._cond:
            self._read.add(tenant)
            self._sessions[tenant] = sessions
        return True

    # -- the models kept in memory -----------------------------------------------------------------

    def resident(self) -> list[str]:
        """Tenants whose own predictor is in memory now, least recently used first."""
        with self._cond:
            return list(self._models)

    def _install(self, tenant: str, model: Predictor) -> None:
        """Make ``model`` serve ``tenant``, evicting the least recently used beyond the cap."""
        with self._cond:
            self._models[tenant] = model
            self._models.move_to_end(tenant)
            self._evicted.discard(tenant)
            self._busy.discard(tenant)  # from now on its runs reach the model itself
            while len(self._models) > self.policy.max_tenant_models:
                gone, model_gone = self._models.popitem(last=False)
                self._evicted.add(gone)
                self._read.discard(gone)  # its model comes back from the file
                room = self._worker is not None and len(self._parked) < self.policy.max_tenant_models
                if gone in self._unsaved and room:  # the worker saves what it learned since its last save
                    self._parked[gone] = model_gone
                    self._schedule(_SAVE)
        self._catch_up(tenant, model)

    def _schedule(self, job: str) -> None:
        """Run ``job`` (a tenant to bring back, or the shared fit) in the worker now; holds ``_cond``."""
        if self._worker is not None and self._due.get(job, 1.0) > 0.0:
            self._due[job] = 0.0
            self._cond.notify()

    def _bring_back(self, catalog: Catalog, tenant: str) -> None:
        """An evicted tenant's model again: its persisted file, else a refit on its sessions.

        A tenant whose file the start left unread also gets the fit every tenant gets at start.
        """
        with self._cond:
            deferred = tenant in self._deferred
            self._deferred.discard(tenant)
        if not self._load(tenant) or deferred:
            self.fit(catalog, tenant)

    # -- background --------------------------------------------------------------------------------

    def start_background(self, catalog: Callable[[], Catalog], *, fit_now: bool) -> None:
        """Start the worker: restore persisted models, fit every tenant (if ``fit_now``), then refit online."""
        if not self.learns:
            return
        with self._cond:
            self._catalog = catalog
            if self._worker is not None:
                return
            self._stop = False
            if fit_now:
                for t in self.tenants():
                    if t not in self._fitted_here:
                        self._due.setdefault(t, 0.0)
            self._worker = threading.Thread(target=self._run, args=(fit_now,), name="prehydrate-learning", daemon=True)
            self._worker.start()

    def _recorded(self, trace: SessionTrace) -> None:
        """A session was recorded: refit its tenant after the debounce delay."""
        tenant = trace.tenant or DEFAULT_TENANT
        if self._factory is None:
            tenant = DEFAULT_TENANT
        with self._cond:
            if self._worker is None or tenant in self._due:
                return  # a refit is already due: this session will be in it (steady traffic cannot postpone it)
            self._evicted.discard(tenant)  # the refit brings an evicted model back, with this session in it
            # Not sooner than the delay, nor than 4 fit durations after the last fit ended, so
            # online refits use at most a fifth of a core however busy the server is.
            last_end, took = self._last_fit.get(tenant, (0.0, 0.0))
            self._due[tenant] = max(time.monotonic() + self.policy.refit_delay_s, last_end + 4 * took)
            self._cond.notify()

    def _run(self, at_start: bool) -> None:
        if at_start:
            self.restore()
        while True:
            with self._cond:
                while not self._stop:
                    now = time.monotonic()
                    ready = [t for t, at in self._due.items() if at <= now]
                    if ready:
                        break
                    wait = min(self._due.values(), default=now + 3600) - now
                    self._cond.wait(timeout=max(wait, 0.01))
                if self._stop:
                    return
                for t in ready:
                    del self._due[t]
                back = self._evicted.intersection(ready)
                self._evicted -= back  # taken: a request meanwhile must not schedule it again
                catalog = self._catalog
            assert catalog is not None
            for t in ready:
                try:
                    if t == _SAVE:
                        self._save_parked()
                    elif t == _SHARED:
                        self._fit_shared(catalog())
                    elif t in back:
                        self._bring_back(catalog(), t)
                    else:
                        self.fit(catalog(), t)
                except Exception:  # a failed refit keeps the previous model; the server goes on
                    logger.exception("refitting the predictor of tenant %r failed; keeping the previous one", t)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker (a fit in progress finishes in its daemon thread; nothing waits for it long)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout_s)
        self.save_unsaved()
