"""The PySide6 workbench (issue 3). Only this package imports Qt."""
