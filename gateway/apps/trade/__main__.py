from gateway.apps.trade.cli import main

raise SystemExit(main(prog="python -m gateway.apps.trade"))
