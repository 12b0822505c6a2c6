"""``fixgw record``: record venues' market data and latency probes to a recording directory.

Not wired yet: it needs the new FIX engine (sessions we drive from one asyncio loop).
The recording side is ready and sans-IO: ``gateway.core.recording.RecordingWriter``
gives a ``Recorder`` to feed with parsed events (``update``, ``snapshot``, ``trade``
with the venue's SendingTime/MDEntryTime as ``ts_exch`` and our receive time as
``ts_local``) and probe answers (``probe(venue, sent_at, rtt)``). The FIX-facing part
(``MarketState`` listener -> Recorder) lands with the engine, as does the gateway's
``[record]`` section and the demo saving its recording.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None, prog: str = "fixgw record", command: str = "record") -> int:
    print(f"{prog}: live recording needs the new FIX engine (coming); the Recorder in "
          "gateway/core/recording.py is ready for it. To try the backtester now: "
          "fixgw backtest synth --out synth.rec, or import LOBSTER/CSV data.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
