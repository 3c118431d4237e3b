"""automl nodes."""
