"""elecflow: real-time price-discovery analytics on csp graphs.

The package root holds the library layer: event types, pure numerics, the synthetic
Election Day. Wiring lives in :mod:`elecflow.graphs`, file and network edges in
:mod:`elecflow.adapters`, the command line in :mod:`elecflow.cli`.
"""

__version__ = "0.1.0"
