"""gettext catalogs of Ledgerflow's user-visible strings (`<lang>/ledgerflow.po`) and their extractor.

Update them with `python -m resources.translations.extract`; see README.md in this folder.
"""
