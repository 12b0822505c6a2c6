"""Synthetic multi-venue L2 data, generated column-wise with numpy (benchmarks, tests, try-outs).

One symbol quoted on several venues around a shared mid that moves one tick at a time.
Invariants (so a strategy sees sane books): every venue starts with a snapshot of
``levels`` per side; a mid move first deletes, on every venue, the level the move
would cross (the old best ask on an up move, the old best bid on a down move), so
bids stay below asks; level updates land 1..``levels`` ticks from the mid; trades print
at the touch. Per venue the feed latency is constant, so each venue's stream stays in order.
"""
from __future__ import annotations

import numpy as np

from gateway.core.recording import AGG_BUY, AGG_SELL, ASK, BID, CLEAR, CHANGE, DELETE, NEW, SNAPSHOT, TRADE, UPDATE, Recording


def synthetic(n_events: int, venues=("ALPHA", "BETA", "GAMMA"), symbol: str = "SYM", seed: int = 1,
              tick: float = 0.01, base: float = 100.0, levels: int = 5, rate_per_s: float = 20_000.0,
              p_move: float = 0.01, p_trade: float = 0.05, feed_latency_us=(50.0, 120.0, 300.0),
              probe_interval_s: float = 0.1, rtt_us=(200.0, 400.0, 900.0)) -> Recording:
    rng = np.random.default_rng(seed)
    nv = len(venues)
    n_base = max(n_events - nv * (2 * levels + 1), 1)
    is_move = rng.random(n_base) < p_move
    counts = np.where(is_move, 2 * nv, 1)   # per venue: delete the crossed level, trim the far one
    idx = np.repeat(np.arange(n_base), counts)
    n = len(idx)
    move_dir = np.where(rng.random(n_base) < 0.5, 1, -1) * is_move
    mid_after = np.cumsum(move_dir)
    mid_before = (mid_after - move_dir)[idx]
    mv = is_move[idx]
    # venue: the expanded rows of a move are one per venue; other rows pick a venue
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    venue = rng.integers(0, nv, n).astype(np.int16)
    slot = (np.arange(n) - np.repeat(first, counts))
    venue[mv] = (slot % nv)[mv]
    far = mv & (slot >= nv)
    t_exch = np.cumsum(rng.exponential(1.0 / rate_per_s, n_base))[idx]
    kind = np.full(n, UPDATE, np.int8)
    side = rng.integers(0, 2, n).astype(np.int8)
    action = np.full(n, CHANGE, np.int8)
    k = np.minimum(rng.geometric(0.45, n), levels)
    off = np.where(side == BID, -k, k)
    qty = rng.integers(1, 31, n).astype(np.float64)
    trade = (rng.random(n) < p_trade) & ~mv
    kind[trade] = TRADE
    agg = np.where(rng.random(n) < 0.5, AGG_BUY, AGG_SELL).astype(np.int8)
    side[trade] = agg[trade]
    off[trade] = np.where(agg[trade] == AGG_BUY, 1, -1)
    qty[trade] = rng.integers(1, 6, int(trade.sum()))
    up = move_dir[idx] > 0
    side[mv] = np.where(up[mv], ASK, BID)
    off[mv] = np.where(up[mv], 1, -1)
    action[mv] = DELETE
    qty[mv] = 0.0
    side[far] = np.where(up[far], BID, ASK)
    off[far] = np.where(up[far], -levels, levels)
    price = np.round(base + (mid_before + off) * tick, 10)
    # initial snapshot per venue at t = 0
    snap_rows = []
    for v in range(nv):
        snap_rows.append((v, CLEAR, 0, 0.0, 0.0, 0))
        for j in range(1, levels + 1):
            snap_rows.append((v, SNAPSHOT, BID, round(base - j * tick, 10), 10.0 * j, NEW))
            snap_rows.append((v, SNAPSHOT, ASK, round(base + j * tick, 10), 10.0 * j, NEW))
    sv, sk, ss, sp, sq, sa = (np.array(c) for c in zip(*snap_rows))
    venue = np.concatenate((sv.astype(np.int16), venue))
    kind = np.concatenate((sk.astype(np.int8), kind))
    side = np.concatenate((ss.astype(np.int8), side))
    price = np.concatenate((sp, price))
    qty = np.concatenate((sq, qty))
    action = np.concatenate((sa.astype(np.int8), action))
    t_exch = np.concatenate((np.zeros(len(snap_rows)), t_exch + 1e-3))
    ts_exch = np.round(t_exch * 1e9).astype(np.int64)
    feed = np.array([feed_latency_us[i % len(feed_latency_us)] * 1000 for i in range(nv)], np.int64)
    ts_local = ts_exch + feed[venue]
    order = np.argsort(ts_local, kind="stable")
    end_s = float(t_exch[-1])
    pv, ps, pr = [], [], []
    for v in range(nv):
        sent = np.arange(0.0, end_s, probe_interval_s)
        rtt = rtt_us[v % len(rtt_us)] * 1e-6 * (1 + 0.1 * rng.standard_normal(len(sent))).clip(0.5)
        pv.append(np.full(len(sent), v, np.int16))
        ps.append(np.round(sent * 1e9).astype(np.int64))
        pr.append(rtt)
    return Recording(ts_exch=ts_exch[order], ts_local=ts_local[order], venue=venue[order],
                     symbol=np.zeros(len(order), np.int16), kind=kind[order], side=side[order],
                     price=price[order], qty=qty[order], action=action[order], venues=list(venues),
                     symbols=[symbol], probe_venue=np.concatenate(pv), probe_sent_at=np.concatenate(ps),
                     probe_rtt=np.concatenate(pr))
