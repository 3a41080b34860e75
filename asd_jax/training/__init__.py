"""Layer 3: pure train/eval steps, data parallelism, optimiser, checkpoints and the train loop."""
