"""Layer 1: from a clinic's files (or the synthetic cohort) to validated clips, folds and batches."""
