"""Engine exceptions. Each one carries enough context (file, line, node, port, field) to act on."""
from __future__ import annotations


class LedgerflowError(Exception):
    """Base of every error the engine raises on purpose; the CLI turns these into a message and exit code 2."""


class ProjectFileError(LedgerflowError):
    """A project file that cannot be read: missing, corrupt, truncated, newer format, wrong shape."""


class GraphError(LedgerflowError):
    """A change to the graph that is refused (unknown node, incompatible ports, cycle)."""


class PortTypeMismatch(GraphError):
    pass


class NodeInputError(LedgerflowError):
    """Bad input found by a node while computing (missing column, malformed row, single-class label).

    Raised by node code; the scheduler shows it without a traceback because the message already says what to fix.
    """


class Cancelled(LedgerflowError):
    """Raised inside compute when the user cancelled the run."""


class ArtifactIntegrityError(LedgerflowError):
    """A stored artifact whose content no longer matches its hash (tampered or corrupt)."""
