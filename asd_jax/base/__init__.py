"""Layer 0: facts every other layer shares (skeleton, labels, errors, architecture constants).
numpy only, so the PyTorch side can import it without JAX."""
