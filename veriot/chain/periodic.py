"""A background thread that runs a step every interval until stopped: what the anchorer
and the registry sync both are."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls `step` every `interval_s` seconds on a daemon thread named `name`. `step` must
    handle its own errors: one that escapes ends the thread."""

    def __init__(self, name: str, step: Callable[[], object], interval_s: float) -> None:
        self._name, self._step, self._interval_s = name, step, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()
            self._stop.wait(self._interval_s)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
