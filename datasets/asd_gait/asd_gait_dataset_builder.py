"""The `asd_gait` builder where the `tfds` command-line tool looks for it (`tfds build datasets/asd_gait`).

The builder itself lives in `asd_jax.data.tfds_builder`, so the installed library needs nothing
outside its package; this subclass only gives the CLI a class defined in this module.
"""

from asd_jax.data import tfds_builder

BuilderConfig = tfds_builder.BuilderConfig


class Builder(tfds_builder.Builder, skip_registration=True):
    """`asd_gait`, as defined in asd_jax.data.tfds_builder."""
