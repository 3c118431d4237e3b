"""Ledgerflow engine: the pure-Python core (graph, node SDK, scheduler, cache, executors). No Qt here."""
