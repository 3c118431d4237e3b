"""evaluate nodes."""
