"""Replay control shared between the engine thread (pacer) and the dashboard server."""

from __future__ import annotations

import threading


class ReplayControl:
    """Pause/resume switch and published run state of a replay.

    The pacing node blocks in :meth:`wait_while_paused` on the engine thread; the dashboard's
    HTTP handlers call :meth:`pause` / :meth:`resume` from the server thread. ``state`` is one
    of ``"starting"``, ``"running"``, ``"paused"``, ``"finished"``, ``"failed"``.
    """

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._state = "starting"
        self._listeners: list = []

    def add_listener(self, callback) -> None:
        """Call ``callback(state)`` whenever the published state changes (any thread)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        state = self.state
        for callback in list(self._listeners):
            callback(state)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def state(self) -> str:
        with self._lock:
            if self._state in {"starting", "running"} and self.paused:
                return "paused"
            return self._state

    def set_state(self, state: str) -> None:
        if state not in {"starting", "running", "finished", "failed"}:
            raise ValueError(f"unknown replay state {state!r}")
        with self._lock:
            self._state = state
        if state in {"finished", "failed"}:
            self._running.set()  # never leave the engine blocked on a finished run
        self._notify()

    def pause(self) -> None:
        with self._lock:
            if self._state in {"finished", "failed"}:
                return
        self._running.clear()
        self._notify()

    def resume(self) -> None:
        self._running.set()
        self._notify()

    def wait_while_paused(self, poll_seconds: float = 0.2) -> float:
        """Block while paused; return the wall-clock seconds spent waiting."""
        if self._running.is_set():
            return 0.0
        import time

        start = time.monotonic()
        while not self._running.wait(poll_seconds):
            pass
        return time.monotonic() - start
