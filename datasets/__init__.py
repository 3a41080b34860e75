"""TFDS dataset builders of the project (`datasets/<name>/`)."""
