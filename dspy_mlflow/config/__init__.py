"""Configuration: the root schema (``schema.py``), the conf/ location, the whole-config checks
(``validate.py``), a section checked against its owner's dataclass (``typed.py``), secrets, and
Hydra's errors and ``--help`` as one-liners. Imports nothing of the package above ``errors``.
"""
