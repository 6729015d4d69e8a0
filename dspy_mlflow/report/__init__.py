"""Reports over a store's runs: the runs table (``runs_table.py``)."""
