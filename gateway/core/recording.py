"""Recorded market data: the event schema, a sans-IO ``Recorder``, Parquet I/O, CSV and LOBSTER import.

A recording is a directory::

    run.rec/
      events.parquet   one row per market data event (schema EVENTS below)
      probes.parquet   one row per latency probe answer (schema PROBES below)

Why Parquet through pyarrow: a data person opens it with pandas / polars / DuckDB / Spark
as is; it is columnar (the replay reads whole columns into numpy without touching a
Python object per row), compressed (venue and symbol are dictionary-encoded on disk,
timestamps delta-friendly), typed, and written in row groups so a recorder appends a
batch at a time and never holds the day in memory. Raw numpy ``.npy`` files are faster
to mmap but carry no schema, no strings and are opaque to every tool but numpy.

Event schema (``events.parquet``), one row per event::

    ts_exch   int64    venue timestamp (exchange time from the message), ns
    ts_local  int64    our receive timestamp, ns (same clock for every venue of a file);
                       ts_local - ts_exch is the feed latency, it is in the data
    venue     string   venue name
    symbol    string
    kind      int8     0 UPDATE   incremental level change (side, price, qty, action)
                       1 SNAPSHOT one level of a full snapshot (always after a CLEAR)
                       2 TRADE    a print on the tape (side = aggressor, price, qty)
                       3 CLEAR    both sides of the book emptied (a snapshot follows)
    side     int8      levels: 0 bid, 1 ask (FIX 269); trades: aggressor 1 buy, 2 sell,
                       0 unknown (FIX 54)
    price    float64
    qty      float64   the level's new total quantity (L2, not a delta); trade size
    action   int8      0 new, 1 change, 2 delete (FIX 279); 0 for other kinds

Rows are in ``ts_local`` order (the order we received them); per (venue, symbol)
``ts_exch`` is non-decreasing. Probe schema (``probes.parquet``): ``venue`` string,
``sent_at`` int64 ns (same clock as ``ts_local``), ``rtt`` float64 seconds.

CSV layout (``read_csv``): a header row and the same columns with readable codes:
``ts_exch,ts_local,venue,symbol,kind,side,price,qty,action`` with kind one of
``update|snapshot|trade|clear``, side ``bid|ask`` for levels and ``buy|sell|`` for trades,
action ``new|change|delete`` (empty for non-updates); timestamps integer ns. Probes
from a second CSV with ``venue,sent_at,rtt``.

LOBSTER (``read_lobster``): the message file (time in seconds after midnight, type,
order id, size, price x 10000, direction) and the order book file (ask px, ask size,
bid px, bid size per level, one row per message, the book AFTER the message). The book
rows are diffed price by price into UPDATE events (a level that leaves the file's N
visible levels is deleted: the replay only knows the visible book); executions (type 4
visible, 5 hidden) become TRADEs whose aggressor is the opposite of the message's
direction (direction 1 = a resting buy order was hit = a sell aggressor), written before
the level change they cause, as on a venue feed. Hidden executions (type 5) consumed no
displayed queue, so by default they are left out (a queue model would otherwise advance
on them); ``hidden_trades=True`` keeps them. The first book row becomes a snapshot.

Recording live: ``Recorder`` is sans-IO (events in, batches out to a writer). The FIX
wiring that feeds it from the gateway's market-data sessions and probe answers comes
with the new FIX engine.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

UPDATE, SNAPSHOT, TRADE, CLEAR = 0, 1, 2, 3
BID, ASK = 0, 1
AGG_UNKNOWN, AGG_BUY, AGG_SELL = 0, 1, 2
NEW, CHANGE, DELETE = 0, 1, 2
KIND_NAMES = ("update", "snapshot", "trade", "clear")
EVENT_COLUMNS = ("ts_exch", "ts_local", "venue", "symbol", "kind", "side", "price", "qty", "action")
NUMERIC = ("ts_exch", "ts_local", "kind", "side", "price", "qty", "action")
DTYPES = {"ts_exch": np.int64, "ts_local": np.int64, "kind": np.int8, "side": np.int8,
          "price": np.float64, "qty": np.float64, "action": np.int8}


def _pa():
    import pyarrow as pa
    return pa


def events_schema():
    pa = _pa()
    meta = {b"kind": b"0 update, 1 snapshot, 2 trade, 3 clear",
            b"side": b"levels: 0 bid, 1 ask; trades: aggressor 1 buy, 2 sell, 0 unknown",
            b"action": b"0 new, 1 change, 2 delete", b"timestamps": b"int64 ns"}
    return pa.schema([("ts_exch", pa.int64()), ("ts_local", pa.int64()), ("venue", pa.string()),
                      ("symbol", pa.string()), ("kind", pa.int8()), ("side", pa.int8()),
                      ("price", pa.float64()), ("qty", pa.float64()), ("action", pa.int8())], metadata=meta)


def probes_schema():
    pa = _pa()
    return pa.schema([("venue", pa.string()), ("sent_at", pa.int64()), ("rtt", pa.float64())])


# ---------------------------------------------------------------- in-memory form

@dataclass
class Recording:
    """Columns as numpy arrays (venue/symbol as int codes into ``venues``/``symbols``)."""
    ts_exch: np.ndarray
    ts_local: np.ndarray
    venue: np.ndarray          # int16 codes
    symbol: np.ndarray         # int16 codes
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    action: np.ndarray
    venues: list[str]
    symbols: list[str]
    probe_venue: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    probe_sent_at: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    probe_rtt: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))

    def __len__(self) -> int:
        return len(self.ts_local)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, c).nbytes for c in (*NUMERIC, "venue", "symbol"))


def from_rows(rows: Iterable[tuple], probes: Iterable[tuple] = ()) -> Recording:
    """Build a Recording from (ts_exch, ts_local, venue, symbol, kind, side, price, qty, action)
    tuples and (venue, sent_at, rtt) probe tuples (tests, importers)."""
    rows = list(rows)
    probes = list(probes)
    venues: dict[str, int] = {}
    symbols: dict[str, int] = {}
    cols = {c: np.array([r[i] for r in rows], dtype=DTYPES[c]) if rows else np.empty(0, DTYPES[c])
            for i, c in enumerate(EVENT_COLUMNS) if c in DTYPES}
    ven = np.array([venues.setdefault(r[2], len(venues)) for r in rows], dtype=np.int16)
    sym = np.array([symbols.setdefault(r[3], len(symbols)) for r in rows], dtype=np.int16)
    pv = np.array([venues.setdefault(p[0], len(venues)) for p in probes], dtype=np.int16)
    return Recording(venue=ven, symbol=sym, venues=list(venues), symbols=list(symbols),
                     probe_venue=pv, probe_sent_at=np.array([p[1] for p in probes], dtype=np.int64),
                     probe_rtt=np.array([p[2] for p in probes], dtype=np.float64), **cols)


# ---------------------------------------------------------------- recorder (sans-IO)

class Recorder:
    """Buffers events column-wise and hands full batches to ``sink(batch)`` (a pyarrow RecordBatch).

    No I/O and no clock of its own: the caller passes both timestamps. One list per
    column keeps an append at a few hundred ns; ``batch_rows`` bounds the memory held.
    """

    def __init__(self, sink, probe_sink=None, batch_rows: int = 65_536) -> None:
        self.sink = sink
        self.probe_sink = probe_sink
        self.batch_rows = batch_rows
        self._cols: tuple[list, ...] = tuple([] for _ in EVENT_COLUMNS)
        self._probes: tuple[list, list, list] = ([], [], [])
        self.events = 0
        self.probes = 0

    def _row(self, *values) -> None:
        for col, v in zip(self._cols, values):
            col.append(v)
        self.events += 1
        if len(self._cols[0]) >= self.batch_rows:
            self.flush()

    def update(self, venue: str, symbol: str, ts_exch: int, ts_local: int, side: int, price: float,
               qty: float, action: int = CHANGE) -> None:
        self._row(ts_exch, ts_local, venue, symbol, UPDATE, side, price, qty if action != DELETE else 0.0, action)

    def snapshot(self, venue: str, symbol: str, ts_exch: int, ts_local: int,
                 bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]]) -> None:
        self._row(ts_exch, ts_local, venue, symbol, CLEAR, 0, 0.0, 0.0, 0)
        for side, levels in ((BID, bids), (ASK, asks)):
            for px, q in levels:
                self._row(ts_exch, ts_local, venue, symbol, SNAPSHOT, side, px, q, NEW)

    def trade(self, venue: str, symbol: str, ts_exch: int, ts_local: int, price: float, qty: float,
              aggressor: int = AGG_UNKNOWN) -> None:
        self._row(ts_exch, ts_local, venue, symbol, TRADE, aggressor, price, qty, 0)

    def probe(self, venue: str, sent_at: int, rtt_s: float) -> None:
        for col, v in zip(self._probes, (venue, sent_at, rtt_s)):
            col.append(v)
        self.probes += 1

    def flush(self) -> None:
        pa = _pa()
        if self._cols[0]:
            batch = pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in
                                                zip(self._cols, events_schema())], schema=events_schema())
            for c in self._cols:
                c.clear()
            self.sink(batch)
        if self._probes[0] and self.probe_sink is not None:
            batch = pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in
                                                zip(self._probes, probes_schema())], schema=probes_schema())
            for c in self._probes:
                c.clear()
            self.probe_sink(batch)


class RecordingWriter:
    """A Recorder writing a recording directory (events.parquet + probes.parquet)."""

    def __init__(self, path: str | Path, batch_rows: int = 65_536, meta: dict | None = None) -> None:
        import pyarrow.parquet as pq
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        schema = events_schema().with_metadata({**events_schema().metadata,
                                                b"recording": json.dumps(meta or {}).encode()})
        self._ev = pq.ParquetWriter(self.path / "events.parquet", schema, compression="zstd")
        self._pr = pq.ParquetWriter(self.path / "probes.parquet", probes_schema(), compression="zstd")
        self.recorder = Recorder(self._write_events, self._pr.write_batch, batch_rows)

    def _write_events(self, batch) -> None:
        self._ev.write_batch(batch.replace_schema_metadata(self._ev.schema.metadata))

    def close(self) -> None:
        self.recorder.flush()
        self._ev.close()
        self._pr.close()

    def __enter__(self) -> Recorder:
        return self.recorder

    def __exit__(self, *exc) -> None:
        self.close()


def write_recording(rec: Recording, path: str | Path, batch_rows: int = 1_000_000) -> Path:
    """Write a Recording (numpy columns) as a recording directory, a batch at a time."""
    import pyarrow.parquet as pq
    pa = _pa()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    venues = pa.array(rec.venues, pa.string())
    symbols = pa.array(rec.symbols, pa.string())
    with pq.ParquetWriter(path / "events.parquet", events_schema(), compression="zstd") as w:
        for a in range(0, max(len(rec), 1), batch_rows):
            b = slice(a, a + batch_rows)
            cols = {c: pa.array(getattr(rec, c)[b]) for c in NUMERIC}
            cols["venue"] = venues.take(pa.array(rec.venue[b].astype(np.int32)))
            cols["symbol"] = symbols.take(pa.array(rec.symbol[b].astype(np.int32)))
            w.write_batch(pa.RecordBatch.from_arrays([cols[c] for c in EVENT_COLUMNS], schema=events_schema()))
    probe_venues = venues.take(pa.array(rec.probe_venue.astype(np.int32)))
    pq.write_table(pa.Table.from_arrays([probe_venues, pa.array(rec.probe_sent_at), pa.array(rec.probe_rtt)],
                                        schema=probes_schema()), path / "probes.parquet")
    return path


def read_recording(path: str | Path) -> Recording:
    """Read a recording directory into numpy columns, a row group at a time (bounded peak memory)."""
    import pyarrow.parquet as pq
    path = Path(path)
    pf = pq.ParquetFile(path / "events.parquet")
    n = pf.metadata.num_rows
    cols = {c: np.empty(n, DTYPES[c]) for c in NUMERIC}
    ven = np.empty(n, np.int16)
    sym = np.empty(n, np.int16)
    venues: dict[str, int] = {}
    symbols: dict[str, int] = {}
    pos = 0
    pool = _pa().default_memory_pool()
    for batch in pf.iter_batches(batch_size=1 << 18, use_threads=False):
        m = batch.num_rows
        for c in NUMERIC:
            cols[c][pos:pos + m] = batch.column(c).to_numpy(zero_copy_only=False)
        ven[pos:pos + m] = _codes(batch.column("venue"), venues)
        sym[pos:pos + m] = _codes(batch.column("symbol"), symbols)
        pos += m
        del batch
        pool.release_unused()   # arrow's allocator keeps freed pages: return them, or RSS doubles
    pv = np.empty(0, np.int16)
    ps = np.empty(0, np.int64)
    pr = np.empty(0, np.float64)
    if (path / "probes.parquet").exists():
        t = pq.read_table(path / "probes.parquet")
        pv = _codes(t.column("venue").combine_chunks(), venues)
        ps = t.column("sent_at").to_numpy()
        pr = t.column("rtt").to_numpy()
    return Recording(venue=ven, symbol=sym, venues=list(venues), symbols=list(symbols),
                     probe_venue=pv, probe_sent_at=ps, probe_rtt=pr, **cols)


def _codes(arr, table: dict[str, int]) -> np.ndarray:
    """String column -> int16 codes into ``table`` (extended as new names appear)."""
    import pyarrow.compute as pc
    enc = pc.dictionary_encode(arr)
    names = enc.dictionary.to_pylist()
    remap = np.array([table.setdefault(s, len(table)) for s in names] or [0], dtype=np.int16)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return remap[idx] if len(idx) else np.empty(0, np.int16)


# ---------------------------------------------------------------- CSV

_KIND = {"update": UPDATE, "snapshot": SNAPSHOT, "trade": TRADE, "clear": CLEAR}
_LEVEL_SIDE = {"bid": BID, "ask": ASK}
_AGG = {"buy": AGG_BUY, "sell": AGG_SELL, "": AGG_UNKNOWN}
_ACTION = {"new": NEW, "change": CHANGE, "delete": DELETE, "": NEW}


def read_csv(events_csv: str | Path, probes_csv: str | Path | None = None) -> Recording:
    """The documented CSV layout (module docstring) -> Recording."""
    import csv
    rows = []
    with open(events_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            kind = _KIND[r["kind"].strip().lower()]
            s = (r.get("side") or "").strip().lower()
            side = _AGG[s] if kind == TRADE else _LEVEL_SIDE.get(s, 0)
            rows.append((int(r["ts_exch"]), int(r["ts_local"]), r["venue"], r["symbol"], kind, side,
                         float(r.get("price") or 0), float(r.get("qty") or 0),
                         _ACTION[(r.get("action") or "").strip().lower()]))
    probes = []
    if probes_csv is not None:
        with open(probes_csv, newline="") as fh:
            probes = [(r["venue"], int(r["sent_at"]), float(r["rtt"])) for r in csv.DictReader(fh)]
    return from_rows(rows, probes)


# ---------------------------------------------------------------- LOBSTER

_LOBSTER_EMPTY = 9_999_999_999


def read_lobster(message_file: str | Path, orderbook_file: str | Path, venue: str = "LOBSTER",
                 symbol: str = "LOB", day_start_ns: int = 0, price_scale: float = 10_000.0,
                 feed_latency_ns: int = 0, hidden_trades: bool = False) -> Recording:
    """LOBSTER message + order book files -> Recording (see the module docstring for the rules)."""
    msgs = np.loadtxt(message_file, delimiter=",", ndmin=2, usecols=range(6))
    book = np.loadtxt(orderbook_file, delimiter=",", ndmin=2)
    if len(msgs) != len(book):
        raise ValueError(f"LOBSTER: {len(msgs)} messages but {len(book)} order book rows")
    rows: list[tuple] = []
    prev_bid: dict[float, float] = {}
    prev_ask: dict[float, float] = {}
    for i in range(len(msgs)):
        t = day_start_ns + int(round(msgs[i, 0] * 1e9))
        tl = t + feed_latency_ns
        bid, ask = _lobster_levels(book[i], price_scale)
        if i == 0:
            rows.append((t, tl, venue, symbol, CLEAR, 0, 0.0, 0.0, 0))
            rows += [(t, tl, venue, symbol, SNAPSHOT, BID, p, q, NEW) for p, q in bid.items()]
            rows += [(t, tl, venue, symbol, SNAPSHOT, ASK, p, q, NEW) for p, q in ask.items()]
        else:
            mtype, size, px, direction = int(msgs[i, 1]), msgs[i, 3], msgs[i, 4] / price_scale, int(msgs[i, 5])
            if mtype == 4 or (mtype == 5 and hidden_trades):
                agg = AGG_SELL if direction == 1 else AGG_BUY
                rows.append((t, tl, venue, symbol, TRADE, agg, px, float(size), 0))
            rows += _level_diff(t, tl, venue, symbol, BID, prev_bid, bid)
            rows += _level_diff(t, tl, venue, symbol, ASK, prev_ask, ask)
        prev_bid, prev_ask = bid, ask
    return from_rows(rows)


def _lobster_levels(row: np.ndarray, scale: float) -> tuple[dict[float, float], dict[float, float]]:
    bid: dict[float, float] = {}
    ask: dict[float, float] = {}
    for k in range(0, len(row) - 3, 4):
        ap, aq, bp, bq = row[k:k + 4]
        if aq > 0 and abs(ap) < _LOBSTER_EMPTY:
            ask[round(ap / scale, 10)] = float(aq)
        if bq > 0 and abs(bp) < _LOBSTER_EMPTY:
            bid[round(bp / scale, 10)] = float(bq)
    return bid, ask


def _level_diff(t, tl, venue, symbol, side, before: dict, after: dict) -> list[tuple]:
    out = []
    for p, q in after.items():
        old = before.get(p)
        if old is None:
            out.append((t, tl, venue, symbol, UPDATE, side, p, q, NEW))
        elif old != q:
            out.append((t, tl, venue, symbol, UPDATE, side, p, q, CHANGE))
    for p in before.keys() - after.keys():
        out.append((t, tl, venue, symbol, UPDATE, side, p, 0.0, DELETE))
    return out
