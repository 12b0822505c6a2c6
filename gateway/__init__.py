"""FIX 4.4 order gateway for latency-sensitive (scalping) flow."""

__version__ = "0.1.0"
