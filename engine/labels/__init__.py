"""Labeling: tasks, annotations, review, agreement and exports for business staff (pure Python, no Qt)."""
