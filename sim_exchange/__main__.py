"""python -m sim_exchange --config configs/sim.toml"""
import sys

from sim_exchange.cli import main

sys.exit(main(sys.argv[1:], prog="python -m sim_exchange"))
