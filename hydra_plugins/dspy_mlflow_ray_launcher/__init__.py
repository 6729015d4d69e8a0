"""``hydra/launcher=ray``: each job of a multirun is a Ray task (see :mod:`.ray_launcher`)."""
