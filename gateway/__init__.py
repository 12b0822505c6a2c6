"""FIX 4.4 order gateway for latency-sensitive (scalping) flow."""

# Compiled (mypyc) or pure-Python hot modules: decided here, before any of them can load.
from gateway.common import accel as _accel

_accel.install()

__version__ = "0.1.0"
