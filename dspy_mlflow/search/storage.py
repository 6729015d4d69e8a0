"""Where a study lives and what it is called.

Storage (``search.storage``):
  * null -> beside the MLflow store: ``sqlite:///<dir of mlflow.db>/optuna.db`` when
    ``tracking.uri`` is a sqlite URL, else ``sqlite:///optuna.db`` in the working directory;
  * ``journal:///abs/path/file.log`` (or ``journal://relative.log``) -> an Optuna
    ``JournalStorage(JournalFileBackend(path))``, a plain file several processes share;
  * any other URL is an Optuna RDB URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``).

Study name (``search.study_name``): null -> ``<project>-<optimizer>-<hash>`` where the hash
is :func:`dspy_mlflow.tracking.identity.config_hash` of the config without ``search`` (but
with ``search.objectives``, which fix the study's directions), without the optimizer's
searched keys and ``search_space``, and without ``budget`` (tracking, eval threads,
registry are already outside the hash). So the same command, or the same command with
more trials, another sampler or a narrowed/widened range, continues the same study.

Shared by many workers (:func:`open_study`): N processes or Ray tasks may start at the same
moment on a fresh database. Creating the schema and the study is serialized by a lock the
storage itself offers (a PostgreSQL advisory lock; a lock file beside a sqlite database or a
journal file) and retried with backoff where it has none (alembic's ``CommandError`` and
SQLAlchemy's integrity/operational errors of a half-created schema). A dead worker's RUNNING
trial is found by Optuna's own heartbeat (``heartbeat_interval``, ``grace_period``: RDB
storages natively; the journal file through :class:`HeartbeatJournalStorage`, since Optuna's
``JournalStorage`` has none), failed by ``optuna.storages.fail_stale_trials`` and re-queued
by ``optuna.storages.RetryFailedTrialCallback``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dspy_mlflow import names
from dspy_mlflow.project.loader import project_name
from dspy_mlflow.search.space import searched_keys
from dspy_mlflow.tracking.identity import config_hash

JOURNAL = "journal://"


def storage_url(cfg: Mapping) -> str:
    """The storage URL the study uses (``search.storage`` or the default beside the MLflow store)."""
    url = (cfg.get("search") or {}).get("storage")
    if url:
        return str(url)
    tracking = str((cfg.get("tracking") or {}).get("uri") or "")
    if tracking.startswith("sqlite:///"):
        db = Path(tracking[len("sqlite:///"):])
        return f"sqlite:///{(db.parent / 'optuna.db').as_posix()}"
    return "sqlite:///optuna.db"


def display_url(url: str) -> str:
    """The URL without a password, for params and messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _journal_storage_class():
    from optuna.storages import JournalStorage
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import TrialState

    class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
        """Optuna's JournalStorage with Optuna's heartbeat protocol (``BaseHeartbeat``): the
        beat is a trial system attr, so ``study.optimize``'s ``HeartbeatThread`` and
        ``fail_stale_trials`` work on a journal file exactly as on an RDB storage."""

        def __init__(self, backend, *, heartbeat_interval=None, grace_period=None, failed_trial_callback=None):
            super().__init__(backend)
            self.heartbeat_interval = heartbeat_interval
            self.grace_period = grace_period or (2 * heartbeat_interval if heartbeat_interval else None)
            self.failed_trial_callback = failed_trial_callback

        def record_heartbeat(self, trial_id: int) -> None:
            self.set_trial_system_attr(trial_id, "heartbeat", time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            stale = []
            for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                beat = t.system_attrs.get("heartbeat")
                last = float(beat) if beat is not None else (t.datetime_start.timestamp() if t.datetime_start else now)
                if now - last > float(self.grace_period):
                    stale.append(t._trial_id)
            return stale

        def get_heartbeat_interval(self):
            return self.heartbeat_interval

        def get_heartbeat_stale_trial_callback(self):
            return self.failed_trial_callback

    return HeartbeatJournalStorage


def _rdb_storage_class():
    import datetime as dt

    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    class HeartbeatRDBStorage(RDBStorage):
        """Optuna's RDBStorage, whose heartbeat skips a RUNNING trial that never beat (a worker
        killed between ``study.ask()`` and its heartbeat thread's first beat would hold its slot
        for ever): such a trial is stale ``grace_period`` after it started."""

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            stale = super()._get_stale_trial_ids(study_id)
            grace = dt.timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
            from optuna.storages._rdb import models

            with self.scoped_session() as session:
                rows = (session.query(models.TrialModel)
                        .filter(models.TrialModel.state == TrialState.RUNNING,
                                models.TrialModel.study_id == study_id).all())
                now = dt.datetime.now()  # datetime_start is the worker's local time, as Optuna stores it
                stale += [t.trial_id for t in rows if t.trial_id not in stale and not t.heartbeats
                          and t.datetime_start is not None and now - t.datetime_start > grace]
            return stale

    return HeartbeatRDBStorage


def make_storage(url: str, *, heartbeat_s: int | None = None, grace_s: int | None = None,
                 failed_trial_callback=None):
    """The Optuna storage at ``url``; with ``heartbeat_s``, Optuna's heartbeat is on: a RUNNING
    trial without a beat for ``grace_s`` is stale and ``failed_trial_callback`` sees it fail."""
    import optuna

    beat = {"heartbeat_interval": int(heartbeat_s) if heartbeat_s else None,
            "grace_period": int(grace_s) if heartbeat_s and grace_s else None,
            "failed_trial_callback": failed_trial_callback if heartbeat_s else None}
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len(JOURNAL):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return _journal_storage_class()(JournalFileBackend(str(path)), **beat)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several processes share one file
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if beat["heartbeat_interval"]:
        return _rdb_storage_class()(url, engine_kwargs=engine_kwargs, **beat)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def study_lock(url: str, name: str = names.STUDY_LOCK):
    """Serialize workers of one storage: a PostgreSQL advisory lock held on a connection of its
    own, or an exclusive lock file beside a sqlite database or journal file; elsewhere, nothing
    (:func:`open_study` retries instead)."""
    if url.startswith(("postgresql", "postgres")):
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key(name)})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(name)})
                    conn.commit()
        finally:
            engine.dispose()
        return
    path = None
    if url.startswith(JOURNAL):
        path = Path(url[len(JOURNAL):])
    elif url.startswith("sqlite:///") and url[len("sqlite:///"):] not in ("", ":memory:"):
        path = Path(url[len("sqlite:///"):])
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.dspy_mlflow.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _retrying(make, attempts: int = 6):
    """``make()`` again after the errors of a schema another worker is creating right now."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    retry: tuple[type[BaseException], ...] = (IntegrityError, OperationalError, ProgrammingError)
    try:
        from alembic.util.exc import CommandError

        retry += (CommandError,)
    except ImportError:  # pragma: no cover - alembic comes with optuna
        pass
    for attempt in range(attempts):
        try:
            return make()
        except retry:
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.2 * 2 ** attempt, 3.0))
    raise AssertionError("unreachable")


def open_study(url: str, name: str, directions: list[str], *, heartbeat_s: int | None = None,
               grace_s: int | None = None, max_retry: int | None = 2, on_stale=None):
    """(storage, study): the storage and the study ``name`` in it, created by whichever worker
    gets there first, safely when many start together. With ``heartbeat_s``, a dead worker's
    trial is failed after ``grace_s`` and queued again (``max_retry`` times) by Optuna;
    ``on_stale(study, trial)`` is told first."""
    import optuna
    from optuna.storages import RetryFailedTrialCallback

    retry = RetryFailedTrialCallback(max_retry=max_retry)

    def callback(study, trial):
        if on_stale is not None:
            on_stale(study, trial)
        retry(study, trial)

    def make():
        storage = make_storage(url, heartbeat_s=heartbeat_s, grace_s=grace_s, failed_trial_callback=callback)
        try:  # load first: under the lock nobody else creates it, and no INSERT fails in the database's log
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                        load_if_exists=True)
        return storage, study

    with study_lock(url):
        return _retrying(make)


def study_identity(cfg: Mapping) -> dict[str, Any]:
    """The config that identifies a study: the job's config minus what the search varies or budgets."""

    out = copy.deepcopy(dict(cfg))
    searched = searched_keys(cfg)
    optimizer = dict(out.get("optimizer") or {})
    optimizer.pop("search_space", None)
    for key in searched:
        if key.startswith("compile."):
            comp = dict(optimizer.get("compile") or {})
            comp.pop(key[len("compile."):], None)
            optimizer["compile"] = comp
        else:
            optimizer.pop(key, None)
    out["optimizer"] = optimizer
    out["search"] = {"objectives": list((cfg.get("search") or {}).get("objectives") or ["dev_score"])}
    for key in ("budget", "tracking", "hydra"):
        out.pop(key, None)
    return out


def study_name(cfg: Mapping) -> str:
    given = (cfg.get("search") or {}).get("study_name")
    if given:
        return str(given)

    return f"{project_name(cfg['project'])}-{cfg['optimizer']['name']}-{config_hash(study_identity(cfg))}"
