"""The asset center: datasets, features, model packages and workflows, shared with a bank's controls (no Qt)."""
