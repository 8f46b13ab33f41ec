"""archc: a compiler for declarative CNN architecture specs."""

__version__ = "0.1.0"
