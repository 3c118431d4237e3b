"""explore nodes."""
