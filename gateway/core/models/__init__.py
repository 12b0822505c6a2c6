"""Small model interfaces shared by the simulator and the backtester (hftbacktest-shaped)."""
