"""csp nodes and graphs: thin wrappers that own elecflow estimators and wire streams.

Installed as :mod:`elecflow.graphs` (the source folder is ``graphs/`` at the top of the
repository; see pyproject.toml).
"""
