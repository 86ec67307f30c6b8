"""Where training runs: logical CPUs, the distribution strategy, precision."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import tensorflow as tf

from kerasjobs.errors import RunError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """The resolved strategy and precision of a run, for its record."""

    strategy: tf.distribute.Strategy
    strategy_name: str
    replicas: int
    precision_policy: str

    def describe(self) -> dict[str, object]:
        return {
            "strategy": self.strategy_name,
            "replicas": self.replicas,
            "precision_policy": self.precision_policy,
        }


def split_cpu(replicas: int) -> None:
    """Expose the CPU as `replicas` logical devices (before TF starts up)."""
    if replicas == 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * replicas
        )
    except RuntimeError:
        # Already initialised: fine if it was split the same way before.
        if len(tf.config.list_logical_devices("CPU")) != replicas:
            raise RunError(
                f"--cpu-replicas {replicas} must be set before TensorFlow starts: "
                "run it in a fresh process"
            ) from None


def choose_strategy(name: str) -> tuple[tf.distribute.Strategy, str]:
    """The tf.distribute strategy that --strategy asks for (auto, default or
    mirrored; train.check_config refuses multi-worker before TF starts)."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy(), name

    devices = gpus or tf.config.list_logical_devices("CPU")
    # NCCL, MirroredStrategy's default all-reduce, exists only on GPUs.
    reduction = None if gpus else tf.distribute.ReductionToOneDevice()
    strategy = tf.distribute.MirroredStrategy(
        devices=[device.name for device in devices], cross_device_ops=reduction
    )
    return strategy, name


def precision_policy(setting: str) -> str:
    """The Keras dtype policy that --mixed-precision asks for.

    auto: mixed_float16 when every visible GPU has compute capability 7.0 or
    more (tensor cores), float32 otherwise. on: mixed_float16 on GPUs,
    mixed_bfloat16 on CPUs (float16 arithmetic is emulated and slow there).
    """
    gpus = tf.config.list_physical_devices("GPU")
    if setting == "off":
        return "float32"
    if setting == "on":
        return "mixed_float16" if gpus else "mixed_bfloat16"
    capable = bool(gpus) and all(
        tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        >= (7, 0)
        for gpu in gpus
    )
    return "mixed_float16" if capable else "float32"


def place(strategy: str, mixed_precision: str) -> Placement:
    """Resolve the strategy and precision for one run (after split_cpu)."""
    chosen, name = choose_strategy(strategy)
    policy = precision_policy(mixed_precision)
    placement = Placement(chosen, name, chosen.num_replicas_in_sync, policy)
    logger.info(
        "strategy %s over %d replica(s), precision %s",
        name,
        placement.replicas,
        policy,
    )
    return placement
