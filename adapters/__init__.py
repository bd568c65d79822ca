"""The edges of elecflow: vendor readers and writers, replay pacing, sinks, the dashboard.

Installed as :mod:`elecflow.adapters` (the source folder is ``adapters/`` at the top of the
repository; see pyproject.toml).
"""
