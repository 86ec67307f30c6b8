"""Learning-rate schedules as plain functions of the epoch number."""

from __future__ import annotations

import math

from kerasjobs.config import SCHEDULES, ScheduleConfig
from kerasjobs.errors import InputError


def check_schedule(schedule: ScheduleConfig, epochs: int) -> None:
    """Raise InputError for a schedule that cannot run for `epochs` epochs."""
    if schedule.name not in SCHEDULES:
        raise InputError(
            f"unknown --lr-schedule {schedule.name!r}: use one of "
            f"{', '.join(SCHEDULES)}"
        )
    if not schedule.learning_rate > 0:
        raise InputError(
            f"--learning-rate must be positive, got {schedule.learning_rate}"
        )
    if schedule.warmup_epochs < 0 or schedule.warmup_epochs >= epochs:
        raise InputError(
            f"--warmup-epochs {schedule.warmup_epochs} must be at least 0 and "
            f"less than --epochs {epochs}"
        )
    if not 0 < schedule.resolved_decay_rate <= 1:
        raise InputError(
            f"--lr-decay-rate must be in (0, 1], got {schedule.decay_rate}"
        )
    if schedule.step_epochs < 1:
        raise InputError(
            f"--lr-step-epochs must be at least 1, got {schedule.step_epochs}"
        )


def learning_rate(epoch: int, schedule: ScheduleConfig, epochs: int) -> float:
    """The learning rate for zero-based `epoch` of a run of `epochs` epochs.

    A linear warm-up from base/warmup to base comes first; then the schedule
    runs over the remaining epochs, counted from the end of the warm-up.
    Returns a Python float, which Keras' LearningRateScheduler requires.
    """
    base = schedule.learning_rate
    warmup = schedule.warmup_epochs
    if epoch < warmup:
        return float(base * (epoch + 1) / warmup)

    step = epoch - warmup
    if schedule.name == "constant":
        return float(base)
    if schedule.name == "step":
        exponent = step // schedule.step_epochs
        return float(base * schedule.resolved_decay_rate**exponent)
    if schedule.name == "exponential":
        return float(base * schedule.resolved_decay_rate**step)
    # Cosine decays from base towards zero over the epochs after warm-up.
    span = max(epochs - warmup, 1)
    return float(0.5 * base * (1 + math.cos(math.pi * step / span)))
