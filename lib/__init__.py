"""kerasjobs: Keras training, embedding and tuning as batch jobs."""

__version__ = "0.1.0"
