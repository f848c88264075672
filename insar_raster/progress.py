"""Progress bars: tqdm for loops, a dask callback that drives a tqdm bar, one bar of
named stages for a long run, and a logging handler that never writes onto a bar."""

from __future__ import annotations

import logging
import sys

from dask.callbacks import Callback
from tqdm.auto import tqdm


def progress_bar(iterable=None, total=None, desc=None, disable=False, unit="it"):
    """A tqdm bar on stderr, off when ``disable`` or stderr is not a terminal."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=disable or not sys.stderr.isatty(),
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
    )


class DaskTqdm(Callback):
    """Dask local-scheduler callback showing finished tasks as a tqdm bar."""

    def __init__(self, desc="compute"):
        super().__init__()
        self.desc = desc
        self.bar = None

    def _start_state(self, dsk, state):
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self.bar = progress_bar(total=total, desc=self.desc, unit="task")

    def _posttask(self, key, result, dsk, state, worker_id):
        if self.bar is not None:
            self.bar.update(1)

    def _finish(self, dsk, state, errored):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StageBar:
    """One bar for a run made of stages (fit model A, fit model B, permutation test...).

    The bar counts finished stages and shows the current stage's name, so a long
    command keeps one line of progress instead of a bar per model. Use as a context
    manager; :meth:`stage` starts the next stage.
    """

    def __init__(self, total: int, desc: str, disable: bool = False):
        self.bar = progress_bar(total=total, desc=desc, disable=disable, unit="stage")
        self._started = False

    @property
    def active(self) -> bool:
        """True when the bar is drawn (a terminal, not disabled)."""
        return not self.bar.disable

    def stage(self, name: str) -> None:
        """Finish the current stage (if any) and show ``name`` as the running one."""
        if self._started:
            self.bar.update(1)
        self._started = True
        self.bar.set_postfix_str(name, refresh=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._started and exc[0] is None:
            self.bar.update(1)
            self.bar.set_postfix_str("done", refresh=True)
        self.bar.close()
        return False


class BarSafeHandler(logging.StreamHandler):
    """A log handler that prints through ``tqdm.write``: a line is written above any
    running bar (which is redrawn below it), never glued onto the bar's line.

    Without ``stream``, it writes to ``sys.stderr`` as it is when a line is logged, not
    as it was when the handler was made: a handler that outlives a replaced (and
    closed) stderr, as in tests and notebooks that capture it, still writes where
    stderr is now.
    """

    def __init__(self, stream=None):
        logging.Handler.__init__(self)  # StreamHandler's own __init__ would bind sys.stderr now
        self._stream = stream

    @property
    def stream(self):
        return sys.stderr if self._stream is None else self._stream

    @stream.setter
    def stream(self, value):  # StreamHandler.setStream
        self._stream = value

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # pragma: no cover (logging must never raise)
            self.handleError(record)
