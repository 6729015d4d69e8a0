"""The user's task: the project loader (``loader.py``), strategies (``strategies.py``), splits."""
