"""Nodes that connect a workflow to the asset center: Publish (an output becomes a signed, versioned asset) and
Asset (a pinned, verified asset version becomes an input)."""
