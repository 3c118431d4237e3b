"""features nodes."""
