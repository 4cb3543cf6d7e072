"""Gefion: the control plane of a sovereign AI supercomputer.

``gefion.core`` is the brain (pure scheduling model); ``gefion.twin`` and the live controller
are the two bodies that drive it.
"""

__version__ = "0.1.0"
