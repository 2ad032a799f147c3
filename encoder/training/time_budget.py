"""A wall-clock budget for a `transformers` Trainer: stop cleanly when it is spent, checkpoint every few minutes.

`ksearch adapt --minutes N` trains for at most N minutes. The callback ends training after the last step that is
expected to finish within the budget (by the mean step time so far; the trainer then returns normally and the
caller saves the model), asks for a checkpoint every
`checkpoint_seconds` so an interrupted run can resume, and drives a progress bar whose length is re-estimated from
the measured step time, so its ETA is the earlier of "all steps done" and "budget spent".
"""

from __future__ import annotations

import time

from tqdm.auto import tqdm
from transformers import TrainerCallback


class TimeBudget(TrainerCallback):
    """Stop training before `seconds` after `on_train_begin` are spent; checkpoint every `checkpoint_seconds`
    (None: never)."""

    def __init__(self, seconds: float, *, checkpoint_seconds: float | None = None, progress: bool = True) -> None:
        self.seconds = seconds
        self.checkpoint_seconds = checkpoint_seconds
        self.progress = progress
        self.started = self.last_checkpoint = 0.0
        self.first_step = 0
        self.stopped_by_budget = False
        self.bar: tqdm | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last_checkpoint = time.monotonic()
        self.first_step = state.global_step  # > 0 when resuming from a checkpoint
        self.bar = tqdm(total=max(state.max_steps - self.first_step, 1), desc="training", unit="step",
                        disable=not self.progress)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        elapsed = now - self.started
        done = state.global_step - self.first_step
        if self.bar is not None:
            per_step = elapsed / max(done, 1)
            reachable = done + int(max(self.seconds - elapsed, 0) / per_step)
            total = max(min(state.max_steps - self.first_step, reachable), done)
            if total != self.bar.total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)
        # stop when the next step would end past the budget (measured mean step time), so N minutes is an upper bound
        if elapsed + elapsed / max(done, 1) > self.seconds and state.global_step < state.max_steps:
            self.stopped_by_budget = True
            control.should_training_stop = True
        elif self.checkpoint_seconds is not None and now - self.last_checkpoint >= self.checkpoint_seconds:
            control.should_save = True
            self.last_checkpoint = now
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
        return control

    @property
    def elapsed(self) -> float:
        """Seconds since training began (0 before)."""
        return time.monotonic() - self.started if self.started else 0.0
