"""Strategies and tactics: books and trades in, order commands out (sans-IO).

See ``base.py`` for the contract every strategy follows; it is what lets the same object
run live over FIX (``fixgw trade``, the demo client) and in the backtester.
"""
