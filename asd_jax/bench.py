"""`python -m asd_jax.bench`: the performance benchmark (asd_jax/modes/bench.py, which documents it)."""

from asd_jax.modes.bench import main

if __name__ == "__main__":
    main()
