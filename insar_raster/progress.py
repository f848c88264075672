"""Progress bars: tqdm for loops, and a dask callback that drives a tqdm bar."""
from __future__ import annotations

import sys

from dask.callbacks import Callback
from tqdm.auto import tqdm


def progress_bar(iterable=None, total=None, desc=None, disable=False, unit="it"):
    """A tqdm bar on stderr, off when ``disable`` or stderr is not a terminal."""
    return tqdm(iterable, total=total, desc=desc, disable=disable or not sys.stderr.isatty(),
                unit=unit, file=sys.stderr, dynamic_ncols=True)


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
