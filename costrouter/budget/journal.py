"""Settles the budget store could not take, kept on local disk until it can.

One directory per store (see :func:`journal_dir_for`), shared by every process that
uses that store on this machine. Each process appends to its own file,
``journal-<pid>-<random>.jsonl``, and holds an exclusive ``flock`` on it while it lives;
a file nobody holds a lock on belongs to a dead process, and the next process to start
(:meth:`SettleJournal.adopt`) copies its pending entries into its own file, then removes it.

A file is append-only JSON lines, each written with ``fsync``: ``{"kind": "pending", ...}``
for a settle or release to replay, ``{"kind": "done", "id": ...}`` once it was replayed.
Entries are deduplicated by id, so a crash between copying a dead file and removing it
replays nothing twice (and replays are idempotent by call id in the store anyway).

A write is all or nothing: one cut short (a full disk, a file-size quota) or not
fsynced is cut back off the file and reported as not written; should that cut fail, the
next write first ends the torn line with a NUL, so it can never read as an entry. A
reader takes only lines ended by a newline, and skips (naming file and line) any line
that is too long, nested too deep, not JSON, or whose fields are out of bounds (see
:mod:`~costrouter.budget.journal_lines`); an amount outside
``0..MAX_CALL_UNITS`` is such a line: no writer of this package journals more than one
call's capped charge.

Amounts are units (nano-dollars), marked by the line's ``"v": 2`` and its ``amount_units`` /
``limit_units`` fields. A line of costrouter 0.2 (no ``v``, ``amount_micros`` /
``limit_micros``: micro-dollars) is read in units (times 1,000, exact), so a journal an older
process left behind replays at the same dollars after an upgrade.

A file that cannot grow gets a ``<file>.fault`` marker beside it (its reason inside, when that
fits), which ``costrouter budget status`` shows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, Literal

from costrouter import forks
from costrouter.budget.journal_lines import JournalLineError, decode_line, integer, read_lines, real, text
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.windows import parse_window
from costrouter.errors import CostRouterError
from costrouter.money import LEGACY_UNITS_PER_USD, MAX_CALL_UNITS, MAX_COUNTER_UNITS, UNITS_PER_USD

logger = logging.getLogger("costrouter.budget")

SettleState = Literal["settle", "release"]

_PREFIX = "journal-"
_SUFFIX = ".jsonl"
_FAULT = ".fault"
_TORN_END = b"\x00\n"
LINE_VERSION = 2
"""The journal line format this package writes: amounts in units (nano-dollars)."""
_LEGACY_SCALE = UNITS_PER_USD // LEGACY_UNITS_PER_USD
_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every line (``json.dumps`` with options builds a new one per call)."""
_BUDGET_LINES = 4096


def journal_dir_for(base: str | Path, redis_url: str, key_prefix: str) -> Path:
    """The journal directory of one store: ``<base>/<hash of URL and key prefix>``.

    Hashed, so that a password in the URL never reaches a file name, and so that routers
    of different stores on one machine never replay into each other's store.
    """
    digest = hashlib.sha256(f"{redis_url}\n{key_prefix}".encode()).hexdigest()[:16]
    return Path(base) / digest


@dataclass(slots=True)
class PendingSettle:
    """A settle (or release) of one budget instance that the store has not taken yet.

    A value: derive a changed one with ``dataclasses.replace``. Not frozen, because every leased
    settle builds one and a frozen dataclass sets each field through ``object.__setattr__``.
    """

    id: str
    call_id: str
    budget: BudgetRef
    amount_units: int
    state: SettleState
    at: float
    lease: str | None = None
    """The lease owner whose message ``seq`` carries this settle (``None``: a settle of its own)."""
    seq: int = 0
    window: str = ""
    """The window of that lease."""

    def to_json(self) -> dict[str, Any]:
        """The journal line of this entry."""
        return {**self._head(), "budget": _budget_json(self.budget)}

    def _head(self) -> dict[str, Any]:
        """The line's fields but its budget."""
        lease = {"lease": self.lease, "seq": self.seq, "window": self.window} if self.lease is not None else {}
        return {
            **lease,
            "kind": "pending",
            "v": LINE_VERSION,
            "id": self.id,
            "call_id": self.call_id,
            "state": self.state,
            "amount_units": self.amount_units,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, line: dict[str, Any]) -> PendingSettle:
        """An entry from its journal line; raises :class:`JournalLineError` (or KeyError) when malformed."""
        budget = line["budget"]
        if not isinstance(budget, dict):
            raise JournalLineError("budget must be an object")
        version = line.get("v")
        if version is None:  # costrouter 0.2: micro-dollars
            amount_key, limit_key, scale = "amount_micros", "limit_micros", _LEGACY_SCALE
        elif version == LINE_VERSION:
            amount_key, limit_key, scale = "amount_units", "limit_units", 1
        else:
            raise JournalLineError(f"unknown line version {str(version)[:20]!r}")
        state = line["state"]
        if state not in ("settle", "release"):
            raise JournalLineError(f"unknown state {str(state)[:20]!r}")
        alert_at = budget["alert_at"]
        if not isinstance(alert_at, list):
            raise JournalLineError("budget.alert_at must be a list")
        downgrade_to = budget["downgrade_to"]
        ref = BudgetRef(
            name=text(budget["name"], "budget.name"),
            scope=text(budget["scope"], "budget.scope"),
            scope_id=text(budget["scope_id"], "budget.scope_id"),
            window=parse_window(text(budget["window"], "budget.window")),
            limit_units=min(
                integer(budget[limit_key], f"budget.{limit_key}", MAX_COUNTER_UNITS) * scale, MAX_COUNTER_UNITS
            ),
            alert_at=tuple(real(t, "budget.alert_at") for t in alert_at),
            on_exceeded=text(budget["on_exceeded"], "budget.on_exceeded"),
            downgrade_to=None if downgrade_to is None else text(downgrade_to, "budget.downgrade_to"),
        )
        lease = line.get("lease")
        return cls(
            text(line["id"], "id"),
            text(line["call_id"], "call_id"),
            ref,
            integer(line[amount_key], amount_key, MAX_CALL_UNITS // scale) * scale,
            state,
            real(line["at"], "at"),
            None if lease is None else text(lease, "lease"),
            integer(line.get("seq", 0), "seq", MAX_COUNTER_UNITS),
            text(line.get("window", ""), "window"),
        )


def _budget_json(budget: BudgetRef) -> dict[str, Any]:
    """A journal line's ``budget``."""
    return {
        "name": budget.name,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "window": budget.window.text,
        "limit_units": budget.limit_units,
        "alert_at": list(budget.alert_at),
        "on_exceeded": budget.on_exceeded,
        "downgrade_to": budget.downgrade_to,
    }


def _float_text(value: float) -> str:
    """``value`` as ``_ENCODER`` writes it (``Infinity`` and ``NaN`` for the values JSON lacks)."""
    if math.isfinite(value):
        return float.__repr__(value)
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def done_line(entry_id: str) -> str:
    """The line marking ``entry_id`` done, as ``_ENCODER`` writes ``{"kind": "done", "id": entry_id}``."""
    return f'{{"kind":"done","id":{encode_basestring_ascii(entry_id)}}}'


def new_entry(budget: BudgetRef, call_id: str, amount_units: int, state: SettleState) -> PendingSettle:
    """A fresh journal entry, stamped now."""
    return PendingSettle(os.urandom(16).hex(), call_id, budget, amount_units, state, time.time())


def _parse_lines(path: Path) -> tuple[dict[str, PendingSettle], set[str]]:
    """The pending entries and done ids of one file; a torn, malformed or out-of-bounds line is skipped."""
    pending: dict[str, PendingSettle] = {}
    done: set[str] = set()
    try:
        for number, raw, ended in read_lines(path):
            if not ended:  # the last line, unterminated, is a torn write: expected after a crash
                break
            if raw is not None and not raw.strip():
                continue
            try:
                line = decode_line(raw)
                kind = line["kind"]
                if kind == "done":
                    done.add(text(line["id"], "id"))
                elif kind == "pending":
                    entry = PendingSettle.from_json(line)
                    pending[entry.id] = entry
                else:
                    raise JournalLineError(f"unknown kind {str(kind)[:20]!r}")
            except (KeyError, TypeError, ValueError, CostRouterError) as exc:
                reason = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
                logger.error("costrouter: skipping line %d of settle journal %s: %s", number, path, reason[:300])
    except FileNotFoundError:
        pass
    return pending, done


def read_pending(directory: str | Path) -> list[PendingSettle]:
    """Every pending entry of every file in ``directory`` (live and dead processes), oldest first.

    Reads without locking (appends are whole lines), for ``costrouter budget status``.
    """
    pending: dict[str, PendingSettle] = {}
    done: set[str] = set()
    folder = Path(directory)
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob(f"{_PREFIX}*{_SUFFIX}")):
        entries, finished = _parse_lines(path)
        pending.update(entries)
        done |= finished
    return sorted((e for i, e in pending.items() if i not in done), key=lambda e: e.at)


def journal_trouble(journal: SettleJournal) -> str:
    """Why ``journal`` refused an entry, for a log line: it cannot grow, or it is full."""
    if journal.fault is not None:
        return f"cannot grow ({journal.fault})"
    if journal.closed:
        return "is closed (the router was shut down) and could not leave it for the next start"
    return f"is full ({journal.max_entries} entries wait)"


@dataclass(frozen=True)
class JournalFault:
    """A journal file that could not grow, as its ``.fault`` marker says."""

    path: Path
    reason: str
    since: float


def read_faults(directory: str | Path) -> list[JournalFault]:
    """The journal files of ``directory`` that could not grow when last written (live or dead processes)."""
    folder = Path(directory)
    faults = []
    for marker in sorted(folder.glob(f"{_PREFIX}*{_SUFFIX}{_FAULT}")):
        journal = marker.with_name(marker.name.removesuffix(_FAULT))
        try:
            since = marker.stat().st_mtime
            with marker.open("rb") as file:
                reason = file.read(200).decode("utf-8", "replace").strip()
        except OSError:
            continue  # removed meanwhile
        if journal.exists():
            printable = "".join(c if c.isprintable() else "?" for c in reason)
            faults.append(JournalFault(journal, printable or "unknown (the disk refused even the reason)", since))
    return faults


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SettleJournal:
    """The journal file of this process in ``directory``, and the pending entries it knows.

    Thread-safe. ``max_entries`` bounds the pending entries: :meth:`append` returns
    ``False`` for an entry it could not keep (the caller logs and counts it).
    """

    def __init__(self, directory: str | Path, max_entries: int = 10_000) -> None:
        """Create ``directory`` if needed and open (and lock) a new file of this process in it."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pending: dict[str, PendingSettle] = {}
        self._lines = 0
        self._closed = False
        self._torn = False
        self.fault: str | None = None
        """Why the last write failed (``File too large``, ``No space left on device``), else ``None``."""
        self.own_lease: str | None = None
        """The lease owner of this process's leasing store (:meth:`set_own_lease`)."""
        self._own = 0
        """How many pending entries are :attr:`own_lease`'s."""
        self._budgets: dict[BudgetRef, str] = {}
        """The encoded ``budget`` part of the lines of each budget instance met (at most ``_BUDGET_LINES``)."""
        self._size = 0
        """The file's length: only this process writes it (under its lock), so no ``fstat`` a write."""
        self.path, self._fd = self._create_file()
        forks.renew_in_child(self, first=True)

    def renew_after_fork(self) -> None:
        """In a forked child: a file of the child's own; the parent's entries stay the parent's to replay.

        The inherited descriptor is closed here (the parent's lock lives on in the parent's). A
        child that cannot create its file has a closed journal: its leases fall back to per-call
        budgets (see :attr:`fault`), and nothing it settles is lost.
        """
        self._lock = threading.Lock()
        if self._closed:
            return
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._pending = {}
        self._lines = self._own = self._size = 0
        self._torn = False
        self.fault = self.own_lease = None
        try:
            self.path, self._fd = self._create_file()
        except OSError as exc:
            self._closed = True
            self.fault = f"could not open a journal file for forked process {os.getpid()}: {exc.strerror or exc}"

    # ---- files ---------------------------------------------------------------------------
    def _create_file(self) -> tuple[Path, int]:
        """A new locked file; created under a temporary name so no one adopts it before the lock."""
        name = f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}{_SUFFIX}"
        temporary = self.directory / f".{name}.new"
        descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = self.directory / name
        temporary.rename(path)
        _fsync_dir(self.directory)
        return path, descriptor

    def _line(self, entry: PendingSettle) -> str:
        """The line of ``entry``: what ``_ENCODER`` writes for :meth:`PendingSettle.to_json`, built directly.

        Every leased settle writes one, so the line is put together from its fields (strings
        escaped as the encoder escapes them, numbers as it writes them) and its budget's part cached.
        """
        budget = self._budgets.get(entry.budget)
        if budget is None:
            if len(self._budgets) >= _BUDGET_LINES:
                self._budgets.clear()
            budget = self._budgets[entry.budget] = _ENCODER.encode(_budget_json(entry.budget))
        lease = (
            ""
            if entry.lease is None
            else f'"lease":{encode_basestring_ascii(entry.lease)},"seq":{int.__repr__(entry.seq)},'
            f'"window":{encode_basestring_ascii(entry.window)},'
        )
        return (
            f'{{{lease}"kind":"pending","v":{LINE_VERSION},"id":{encode_basestring_ascii(entry.id)},'
            f'"call_id":{encode_basestring_ascii(entry.call_id)},"state":{encode_basestring_ascii(entry.state)},'
            f'"amount_units":{int.__repr__(entry.amount_units)},"at":{_float_text(entry.at)},"budget":{budget}}}'
        )

    def _write(self, lines: list[str], *, sync: bool = True) -> None:
        """Append ``lines`` (encoded, no newline) whole, or raise OSError with the file as it was.

        See the module's docstring.
        """
        data = "".join([f"{line}\n" for line in lines]).encode()
        if self._torn:
            data = _TORN_END + data
        start = self._size
        try:
            written = 0
            while written < len(data):  # a short write is followed by the error that cut it
                count = os.write(self._fd, data[written:])
                if count == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
            if sync:
                os.fsync(self._fd)
        except OSError:
            self._cut_back(start)
            raise
        self._torn = False
        self._size = start + len(data)
        self._lines += len(lines)

    def _cut_back(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            self._size = os.fstat(self._fd).st_size
            self._torn = self._size != size
            logger.exception("costrouter: could not cut a torn write off the settle journal %s", self.path)

    def _fault(self, error: OSError | None) -> None:
        """Record (or clear) that this file cannot grow, in :attr:`fault` and in its ``.fault`` marker."""
        if error is None:
            if self.fault is not None:
                self.fault = None
                with contextlib.suppress(OSError):
                    self.path.with_name(self.path.name + _FAULT).unlink()
            return
        marker = self.path.with_name(self.path.name + _FAULT)
        reason = error.strerror or str(error)
        if self.fault != reason:
            self.fault = reason
            logger.error("costrouter: the settle journal %s cannot grow: %s", self.path, reason)
        with contextlib.suppress(OSError):  # a disk this full may refuse the marker's text, rarely its name
            marker.touch(mode=0o600)
            marker.write_text(f"{reason}\n", encoding="utf-8")

    def sync(self) -> None:
        """Flush the done marks written since the last sync (a lost one only replays an idempotent settle)."""
        with self._lock:
            if not self._closed:
                os.fsync(self._fd)

    def adopt(self) -> int:
        """Take over the files of dead processes (no lock held on them); returns the entries taken."""
        taken = 0
        for path in sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}")):
            if path == self.path:
                continue
            taken += self._adopt_file(path)
        return taken

    def _adopt_file(self, path: Path) -> int:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its process is alive
            try:
                if os.stat(path).st_ino != os.fstat(descriptor).st_ino:
                    return 0  # another process adopted and removed it meanwhile
            except FileNotFoundError:
                return 0
            entries, done = _parse_lines(path)
            with self._lock:
                fresh = [e for i, e in entries.items() if i not in done and i not in self._pending]
                if fresh:
                    self._write([self._line(e) for e in fresh])
                    for entry in fresh:
                        self._add(entry)
            path.unlink()
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + _FAULT).unlink()
            _fsync_dir(self.directory)
            if fresh:
                logger.warning(
                    "costrouter: adopted %d pending settles of a dead process from %s", len(fresh), path.name
                )
            return len(fresh)
        finally:
            os.close(descriptor)

    # ---- entries -------------------------------------------------------------------------
    def append(self, entry: PendingSettle, *, sync: bool = True) -> bool:
        """Keep ``entry`` (written and fsynced before this returns); ``False`` when full or unwritable.

        ``sync=False`` writes without ``fsync``: the entry survives a crash of the process
        (the kernel has it), not of the machine; for the settles of leased calls.

        When full, a pending *release* makes room for a *settle*: a lost release only
        keeps a hold until its TTL, a lost settle loses spend.
        """
        with self._lock:
            if self._closed:
                return self._leave(entry)
            lines = [self._line(entry)]
            evicted: PendingSettle | None = None
            if len(self._pending) >= self.max_entries:
                if entry.state == "release":
                    return False
                evicted = next((e for e in self._pending.values() if e.state == "release"), None)
                if evicted is None:
                    return False
                lines.append(done_line(evicted.id))
            try:
                self._write(lines, sync=sync)
            except OSError as exc:
                self._fault(exc)
                return False
            self._fault(None)
            self._add(entry)
            if evicted is not None:
                self._forget(evicted.id)
                logger.warning(
                    "costrouter: settle journal full; dropped the release of call %s to keep a settle",
                    evicted.call_id,
                )
            return True

    def _leave(self, entry: PendingSettle) -> bool:
        """Keep an entry that came after :meth:`close` in a file of its own, left for the next start to adopt.

        A call still running at shutdown settles afterwards; when the store refuses that settle,
        its spend waits in this file (unlocked once written, as a dead process's) rather than being
        lost. The lock held; ``False`` when the disk refuses the file.
        """
        try:
            path, descriptor = self._create_file()
        except OSError as exc:
            self.fault = exc.strerror or str(exc)
            return False
        try:
            data = f"{self._line(entry)}\n".encode()
            if os.write(descriptor, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(descriptor)
        except OSError as exc:
            self.fault = exc.strerror or str(exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return False
        finally:
            os.close(descriptor)
        logger.warning(
            "costrouter: the %s of call %s after shutdown waits in %s for the next start to replay",
            entry.state,
            entry.call_id,
            path.name,
        )
        return True

    def _add(self, entry: PendingSettle) -> None:
        """Keep ``entry`` pending (the lock held)."""
        self._forget(entry.id)
        self._pending[entry.id] = entry
        if entry.lease is not None and entry.lease == self.own_lease:
            self._own += 1

    def _forget(self, entry_id: str) -> bool:
        """Drop ``entry_id`` from the pending entries (the lock held); ``False`` when it was not there."""
        entry = self._pending.pop(entry_id, None)
        if entry is None:
            return False
        if entry.lease is not None and entry.lease == self.own_lease:
            self._own -= 1
        return True

    def mark_done(self, entry_id: str) -> None:
        """Record that ``entry_id`` reached the store (not fsynced: see :meth:`sync`); compact when grown.

        Never raises: a mark the disk refuses only lets a restart replay an idempotent settle.
        """
        self.mark_all_done((entry_id,))

    def mark_all_done(self, entry_ids: Iterable[str]) -> None:
        """:meth:`mark_done` of each of ``entry_ids``, their ``done`` lines in one write."""
        with self._lock:
            if self._closed:
                return
            done = [entry_id for entry_id in entry_ids if self._forget(entry_id)]
            if not done:
                return
            try:
                if not self._pending:
                    os.ftruncate(self._fd, 0)
                    self._size = 0
                    os.fsync(self._fd)
                    self._lines = 0
                    self._torn = False
                    return
                self._write([done_line(entry_id) for entry_id in done], sync=False)
                if self._lines > 2 * self.max_entries:
                    self._compact()
            except OSError as exc:
                # The store has the entry: at worst it is replayed again, and a replay is idempotent.
                self._fault(exc)

    def _compact(self) -> None:
        """Move the pending entries to a new file of this process, then drop the old one."""
        old_path, old_fd, old_lines, old_size = self.path, self._fd, self._lines, self._size
        self.path, self._fd = self._create_file()
        self._lines, self._size = 0, 0
        try:
            self._write([self._line(e) for e in self._pending.values()])
        except OSError:
            self.path.unlink()
            os.close(self._fd)
            self.path, self._fd, self._lines, self._size = old_path, old_fd, old_lines, old_size
            raise
        self._torn = False
        old_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            old_path.with_name(old_path.name + _FAULT).unlink()
        _fsync_dir(self.directory)
        os.close(old_fd)

    def pending(self) -> list[PendingSettle]:
        """The entries not replayed yet, oldest first."""
        with self._lock:
            return sorted(self._pending.values(), key=lambda e: e.at)

    @property
    def pending_count(self) -> int:
        """How many entries wait (a cheap read, for the call path)."""
        return len(self._pending)

    def set_own_lease(self, owner: str) -> None:
        """Name this process's lease owner, whose entries never go through the replay.

        Its lease messages carry them to the store (see :attr:`replayable_count`).
        """
        with self._lock:
            self.own_lease = owner
            self._own = sum(1 for entry in self._pending.values() if entry.lease == owner)

    @property
    def replayable_count(self) -> int:
        """How many waiting entries the replay may carry: all but :attr:`own_lease`'s (a cheap read)."""
        return len(self._pending) - self._own

    def pending_units(self) -> int:
        """The amount the pending settles will charge once replayed."""
        with self._lock:
            return sum(e.amount_units for e in self._pending.values() if e.state == "settle")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran: the journal takes no more entries."""
        return self._closed

    def close(self) -> None:
        """Unlock the file (left for the next process when entries wait, removed when not)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._pending:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.path.with_name(self.path.name + _FAULT).unlink()
            os.close(self._fd)
