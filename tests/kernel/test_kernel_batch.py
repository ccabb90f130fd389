"""touch_batch/madvise_batch/access_batch: one kernel entry over several mappings, same effect and cost as
one call per mapping."""

from __future__ import annotations

import numpy as np
import pytest

from clustersim.kernel import MADV, KernelError, Node, RangeBatch

MIB = 1 << 20


def _two_heaps():
    node = Node(memory="512M", seed=0, thp={"enabled": "always"})
    p = node.spawn()
    return node, p, [p.mmap(16 * MIB), p.mmap(8 * MIB)]


def _ranges(region_len: int) -> tuple[np.ndarray, np.ndarray]:
    offs = np.arange(0, region_len, 256 * 1024, dtype=np.int64)
    return offs, np.full(len(offs), 64 * 1024, dtype=np.int64)


@pytest.mark.parametrize("advice", [MADV.DONTNEED, MADV.FREE])
def test_a_batch_over_two_mappings_equals_one_call_per_mapping(advice):
    # Fault two heaps, release every fourth 64 KiB with one batch or with two calls, then reuse them: the
    # page states, the counters and the seconds returned must be identical.
    results = []
    for batched in (True, False):
        node, p, regions = _two_heaps()
        batch = [(r, *_ranges(r.length)) for r in regions]
        spent = p.touch_batch(batch) if batched else sum(p.touch_many(*b) for b in batch)
        spent += (p.madvise_batch(batch, advice) if batched
                  else sum(p.madvise_many(*b, advice) for b in batch))
        spent += p.access_batch(batch) if batched else sum(p.access_many(*b) for b in batch)
        node.check()
        results.append((node.pt.state[: node.pt.nrows].copy(), dict(node.vmstat), p.smaps, spent,
                        p.madvise_calls))
    (sa, va, ma, ta, ca), (sb, vb, mb, tb, cb) = results
    assert np.array_equal(sa, sb) and va == vb and ma == mb and ca == cb
    assert ta == pytest.approx(tb, rel=1e-9)


@pytest.mark.parametrize("call", ["touch_batch", "madvise_batch", "access_batch"])
def test_a_bad_range_in_a_batch_raises_the_error_of_the_first_bad_range_in_batch_order(call):
    # The second mapping has a range past its end (ENOMEM) and the third a negative offset (EINVAL): the
    # batch raises what checking the mappings one at a time raises first, and changes nothing.
    _, p, regions = _two_heaps()
    third = p.mmap(4 * MIB)
    batch = [(regions[0], np.array([0]), np.array([4096])),
             (regions[1], np.array([regions[1].length - 4096]), np.array([8192])),
             (third, np.array([-4096]), np.array([4096]))]
    args = (batch, MADV.DONTNEED) if call == "madvise_batch" else (batch,)
    with pytest.raises(KernelError) as err:
        getattr(p, call)(*args)
    assert err.value.errno == "ENOMEM" and str(regions[1].length) in str(err.value)
    assert p.rss_pages() == 0 and p.madvise_calls == 0


def test_an_empty_batch_costs_nothing():
    # No ranges: no call is counted and no time passes (an empty madvise_batch used to fail in numpy).
    _, p, _ = _two_heaps()
    assert p.madvise_batch([], MADV.DONTNEED) == 0.0
    assert p.touch_batch([]) == 0.0


def _range_batch(batch) -> RangeBatch:
    """The triples as one RangeBatch."""
    return RangeBatch([r for r, _, _ in batch], np.concatenate([o for _, o, _ in batch]),
                      np.concatenate([n for _, _, n in batch]), [len(o) for _, o, _ in batch])


@pytest.mark.parametrize("reverse", [False, True])
def test_a_range_batch_has_the_effect_and_cost_of_its_triples(reverse):
    # The same ranges as triples or as one RangeBatch, its mappings in address order or not (the general
    # path then sorts them as it sorts triples): identical page states, counters and seconds.
    results = []
    for as_arrays in (False, True):
        node, p, regions = _two_heaps()
        triples = [(r, *_ranges(r.length)) for r in (regions[::-1] if reverse else regions)]
        batch = _range_batch(triples) if as_arrays else triples
        spent = p.touch_batch(batch) + p.madvise_batch(batch, MADV.DONTNEED) + p.access_batch(batch)
        node.check()
        results.append((node.pt.state[: node.pt.nrows].copy(), dict(node.vmstat), p.smaps, spent,
                        p.madvise_calls))
    (sa, va, ma, ta, ca), (sb, vb, mb, tb, cb) = results
    assert np.array_equal(sa, sb) and va == vb and ma == mb and ta == tb and ca == cb
    assert ca == sum(len(o) for _, o, _ in triples) and ma["Rss"] > 0


def test_a_bad_range_in_a_range_batch_raises_what_its_triples_raise():
    # A range past the end of the second mapping: ENOMEM naming that mapping's length, nothing changed.
    _, p, regions = _two_heaps()
    batch = _range_batch([(regions[0], np.array([0]), np.array([4096])),
                          (regions[1], np.array([regions[1].length - 4096]), np.array([8192]))])
    with pytest.raises(KernelError) as err:
        p.touch_batch(batch)
    assert err.value.errno == "ENOMEM" and str(regions[1].length) in str(err.value)
    assert p.rss_pages() == 0
