"""Best-epoch selection on the test set, for methods whose official training loop does it.

The official SMIE, PGFA and DVTA loops evaluate the unseen test set after every epoch and
report the best epoch. zsbench offers that only as the run option
``model_selection=best_on_test`` (a labelled deviation); the core then hands the method
``RunContext.test_selection``, and the method keeps its best state with :class:`BestEpoch`::

    best = BestEpoch(ctx, net)
    for epoch in range(epochs):
        ...train one epoch...
        best.after_epoch(epoch)          # no-op unless the option is on
    best.restore()                       # back to the best epoch's weights (if any)
"""
from __future__ import annotations

import copy
from typing import Any

from ..api import RunContext


class BestEpoch:
    """Keeps the state of ``modules`` (one ``nn.Module`` or several) at the epoch with the
    highest ``ctx.test_selection()`` accuracy; the first epoch wins ties (strictly greater
    replaces, as the official loops compare). Does nothing when ``ctx.test_selection`` is
    None (the default, clean protocol)."""

    def __init__(self, ctx: RunContext, *modules: Any, every: int = 1, start: int = 0) -> None:
        self.ctx, self.modules, self.every = ctx, modules, max(1, int(every))
        self.start = max(0, int(start))   # first eligible (0-based) epoch
        self.best_acc: float | None = None
        self.best_epoch: int | None = None
        self.history: list[tuple[int, float]] = []
        self._state: list[dict[str, Any]] | None = None

    @property
    def active(self) -> bool:
        return self.ctx.test_selection is not None

    def after_epoch(self, epoch: int) -> float | None:
        """Score the current state (when active, ``epoch >= start`` and ``epoch`` is a
        multiple of ``every`` counted from 1); returns the accuracy or None. Modules are
        left in the mode they were in."""
        if not self.active or epoch < self.start or (epoch + 1) % self.every:
            return None
        modes = [m.training for m in self.modules]
        assert self.ctx.test_selection is not None
        acc = float(self.ctx.test_selection())
        for m, mode in zip(self.modules, modes):
            m.train(mode)
        self.history.append((int(epoch), acc))
        if self.best_acc is None or acc > self.best_acc:
            self.best_acc, self.best_epoch = acc, int(epoch)
            self._state = [copy.deepcopy(m.state_dict()) for m in self.modules]
        return acc

    def restore(self) -> None:
        """Load the best epoch's weights and record the choice in ``ctx.details``."""
        if self._state is None:
            return
        for m, state in zip(self.modules, self._state):
            m.load_state_dict(state)
        self.ctx.details["selected_on_test"] = {
            "epoch": self.best_epoch, "zsl_acc": self.best_acc,
            "curve": [[e, round(a, 4)] for e, a in self.history]}
