"""The PyTorch side: twins of the Flax models, the state_dict converter and the exported predictor.
Imports with torch and numpy alone (plus asd_jax.base): a PyTorch user never needs JAX."""
