"""Node plugins for frozen builds live here; installed plugins register through the ledgerflow.nodes entry point."""
