"""Static resources shipped with Ledgerflow (sample data sets, templates)."""
