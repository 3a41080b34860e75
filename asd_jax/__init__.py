"""asd-jax: clinically guided gait classification from 2D pose sequences, in JAX/Flax."""

__version__ = "0.1.0"
