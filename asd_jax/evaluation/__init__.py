"""Layer 4: predictions, metrics, the evaluation protocol of one fold, reports, plots, explanations."""
