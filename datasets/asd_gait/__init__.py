"""The `asd_gait` TFDS dataset: one record per walking clip."""

from datasets.asd_gait.asd_gait_dataset_builder import Builder, BuilderConfig

__all__ = ["Builder", "BuilderConfig"]
