"""Sorted blocks: ordered maps of int64 keys to int64 values for compiled code, all in one int64 buffer.

The free-span structures of the page heaps are ordered sets: tcmalloc's legacy page heap keeps large free
spans in a set ordered by (length, address) (gperftools src/page_heap.cc, a std::set since "Implemented
O(log n) searching among large spans", 2017) and finds neighbours for coalescing through its page map;
jemalloc keeps extents in per-size-class heaps and an LRU list (src/eset.c). Here each such set is one
ordered map in a *sorted-blocks* layout, a B+-tree of height two: the keys sit in ascending order in blocks
of ``BLOCK_KEYS``, and a per-map index lists its blocks in key order with each block's largest key. A lookup
is a binary search of the index, then of one block; an insert or removal shifts at most one block's worth
of entries (a full block splits in two; an emptied block returns to a pool). So every operation costs
O(log n + BLOCK_KEYS) machine instructions, and memory follows the number of free runs, not the heap size.

Several maps share one block pool and live in one int64 buffer, with a few ``extra`` words of their owner
(counters, per-class heads), so a compiled batch call receives a single array: numba's dispatcher types
every argument on every call, about a microsecond per array, more than the operations themselves.

Buffer layout (int64): a header (capacity in blocks, maps, extra words, free blocks), per map its block
and key counts, the extra words, the stack of free block ids, each block's size, per map the block order
and each listed block's largest key, then the keys and values of every block. The buffer cannot grow inside
compiled code: before a batch, ``reserve`` makes room for the inserts it may make (a new buffer when the
pool is short), and the owner keeps the returned buffer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from clustersim.jit import inline, njit

from .bisection import first_at_least

# Keys per block: a block shift moves at most 64 keys and 64 values (1 KiB), and a map of n keys has about
# n/32 to n/64 blocks, so the index stays a short binary search.
BLOCK_KEYS = 64
_HEADER = 4   # capacity in blocks, maps, extra words, free blocks on the stack


class Blocks(NamedTuple):
    """Views of one buffer's parts (made by ``view``)."""

    head: np.ndarray      # [capacity, maps, extra words, free blocks]
    nblocks: np.ndarray   # [map]: blocks in use
    nkeys: np.ndarray     # [map]: keys held
    extra: np.ndarray     # the owner's words
    free: np.ndarray      # stack of free block ids (the first head[3])
    size: np.ndarray      # [block]: keys in the block
    order: np.ndarray     # [map, position]: block ids in key order (the first nblocks[map])
    last: np.ndarray      # [map, position]: largest key of the block at that position
    keys: np.ndarray      # [block, i]: ascending in i < size[block]
    vals: np.ndarray      # [block, i]


def _layout(nmaps: int, nextra: int, cap: int) -> list[int]:
    """Offsets of the buffer's parts, in ``Blocks`` order after the header, and the end."""
    sizes = [nmaps, nmaps, nextra, cap, cap, nmaps * cap, nmaps * cap, cap * BLOCK_KEYS, cap * BLOCK_KEYS]
    offsets = [_HEADER]
    for n in sizes:
        offsets.append(offsets[-1] + n)
    return offsets


def new_buffer(nmaps: int, nextra: int, cap: int = 4) -> np.ndarray:
    """An empty buffer of ``nmaps`` maps and ``nextra`` zeroed extra words, with ``cap`` blocks in its pool."""
    offsets = _layout(nmaps, nextra, cap)
    buf = np.zeros(offsets[-1], dtype=np.int64)
    buf[:_HEADER] = cap, nmaps, nextra, cap
    free = buf[offsets[3]:offsets[4]]
    free[:] = np.arange(cap - 1, -1, -1)   # popped from the end: block 0 first
    return buf


def extra_offset(buf: np.ndarray) -> int:
    """Index in ``buf`` of the first extra word (for reading the owner's counters from Python)."""
    return _HEADER + 2 * int(buf[1])


def key_count(buf: np.ndarray, m: int) -> int:
    """Keys held by map ``m`` (from Python, without a compiled call)."""
    return int(buf[_HEADER + int(buf[1]) + m])


def reserve(buf: np.ndarray, inserts: int) -> np.ndarray:
    """``buf``, or a copy with a larger pool, so that ``inserts`` more inserts (into any of its maps) fit.

    An insert splits a block only when the block is full; a split leaves two half blocks, which take
    BLOCK_KEYS/2 more inserts each to fill. So ``inserts`` inserts split at most every block in use plus
    2 * inserts / BLOCK_KEYS more, and each map may need one block to start from empty.
    """
    cap, nmaps, nextra, nfree = (int(x) for x in buf[:_HEADER])
    used = cap - nfree
    need = used + 2 * inserts // BLOCK_KEYS + nmaps + 1
    if nfree >= need:
        return buf
    new_cap = max(2 * cap, used + need)
    old, new = _layout(nmaps, nextra, cap), _layout(nmaps, nextra, new_cap)
    out = np.zeros(new[-1], dtype=np.int64)
    out[:_HEADER] = new_cap, nmaps, nextra, nfree + new_cap - cap
    out[new[0]:new[3]] = buf[old[0]:old[3]]                       # counts and extra words
    out[new[3]:new[3] + nfree] = buf[old[3]:old[3] + nfree]       # free ids: the old ones, then the new
    out[new[3] + nfree:new[3] + nfree + new_cap - cap] = np.arange(new_cap - 1, cap - 1, -1)
    out[new[4]:new[4] + cap] = buf[old[4]:old[5]]                 # block sizes
    for part in (5, 6):                                           # order and last, per map
        src = buf[old[part]:old[part + 1]].reshape(nmaps, cap)
        out[new[part]:new[part + 1]].reshape(nmaps, new_cap)[:, :cap] = src
    for part in (7, 8):                                           # keys and values, per block
        out[new[part]:new[part] + cap * BLOCK_KEYS] = buf[old[part]:old[part + 1]]
    return out


# --- compiled operations ----------------------------------------------------------------------------------
@njit
def view(buf):
    """The parts of ``buf`` as array views (no copy)."""
    cap, nmaps, nextra = buf[0], buf[1], buf[2]
    o = _HEADER
    nblocks = buf[o:o + nmaps]
    o += nmaps
    nkeys = buf[o:o + nmaps]
    o += nmaps
    extra = buf[o:o + nextra]
    o += nextra
    free = buf[o:o + cap]
    o += cap
    size = buf[o:o + cap]
    o += cap
    order = buf[o:o + nmaps * cap].reshape(nmaps, cap)
    o += nmaps * cap
    last = buf[o:o + nmaps * cap].reshape(nmaps, cap)
    o += nmaps * cap
    keys = buf[o:o + cap * BLOCK_KEYS].reshape(cap, BLOCK_KEYS)
    o += cap * BLOCK_KEYS
    vals = buf[o:o + cap * BLOCK_KEYS].reshape(cap, BLOCK_KEYS)
    return Blocks(buf[:_HEADER], nblocks, nkeys, extra, free, size, order, last, keys, vals)


@inline
def _block_at_or_after(v, m, key):
    """First position in map ``m``'s index whose block's largest key is >= ``key`` (nblocks if none)."""
    return first_at_least(v.last[m], 0, v.nblocks[m], key)


@inline
def _index_in_block(v, b, key):
    """First index in block ``b`` whose key is >= ``key`` (the block's size if none)."""
    return first_at_least(v.keys[b], 0, v.size[b], key)


@inline
def lower_bound(v, m, key):
    """Position (p, i) of the first key >= ``key`` in map ``m``: block order[m, p], index i. p is
    nblocks[m] when every key is smaller."""
    p = _block_at_or_after(v, m, key)
    if p == v.nblocks[m]:
        return p, 0
    return p, _index_in_block(v, v.order[m, p], key)


@inline
def find(v, m, key):
    """Position of ``key`` in map ``m``, or (-1, 0) when absent."""
    p, i = lower_bound(v, m, key)
    if p == v.nblocks[m] or v.keys[v.order[m, p], i] != key:
        return -1, 0
    return p, i


@inline
def key_at(v, m, p, i):
    return v.keys[v.order[m, p], i]


@inline
def val_at(v, m, p, i):
    return v.vals[v.order[m, p], i]


@inline
def set_val(v, m, p, i, val):
    v.vals[v.order[m, p], i] = val


@inline
def before(v, m, p, i):
    """The position before (p, i) in map ``m``; p is -1 before the first key."""
    if i > 0:
        return p, i - 1
    if p == 0:
        return -1, 0
    return p - 1, v.size[v.order[m, p - 1]] - 1


@inline
def after(v, m, p, i):
    """The position after (p, i) in map ``m``; p is nblocks[m] after the last key."""
    if i + 1 < v.size[v.order[m, p]]:
        return p, i + 1
    return p + 1, 0


@inline
def last_pos(v, m):
    """Position of the largest key of map ``m`` (p is -1 when the map is empty)."""
    nb = v.nblocks[m]
    if nb == 0:
        return -1, 0
    return nb - 1, v.size[v.order[m, nb - 1]] - 1


@njit
def _open_position(v, m, p):
    """Put a block from the pool at position p of map ``m``'s index; returns its id."""
    assert v.head[3] > 0, "sorted blocks: pool exhausted (reserve before the batch)"
    v.head[3] -= 1
    b = v.free[v.head[3]]
    v.size[b] = 0
    nb = v.nblocks[m]
    for q in range(nb, p, -1):
        v.order[m, q] = v.order[m, q - 1]
        v.last[m, q] = v.last[m, q - 1]
    v.order[m, p] = b
    v.nblocks[m] = nb + 1
    return b


@njit
def _close_position(v, m, p):
    """Return the (empty) block at position p of map ``m`` to the pool."""
    v.free[v.head[3]] = v.order[m, p]
    v.head[3] += 1
    nb = v.nblocks[m] - 1
    for q in range(p, nb):
        v.order[m, q] = v.order[m, q + 1]
        v.last[m, q] = v.last[m, q + 1]
    v.nblocks[m] = nb


@njit
def _split(v, m, p):
    """Move the upper half of the full block at position p into a new block at position p + 1."""
    b = v.order[m, p]
    c = _open_position(v, m, p + 1)
    half = BLOCK_KEYS // 2
    for i in range(half, BLOCK_KEYS):
        v.keys[c, i - half] = v.keys[b, i]
        v.vals[c, i - half] = v.vals[b, i]
    v.size[b] = half
    v.size[c] = BLOCK_KEYS - half
    v.last[m, p + 1] = v.last[m, p]
    v.last[m, p] = v.keys[b, half - 1]


@njit
def insert(v, m, key, val):
    """Add ``key`` (not present) with ``val`` to map ``m``."""
    if v.nblocks[m] == 0:
        _open_position(v, m, 0)
    p = min(_block_at_or_after(v, m, key), v.nblocks[m] - 1)
    if v.size[v.order[m, p]] == BLOCK_KEYS:
        _split(v, m, p)
        if key > v.last[m, p]:
            p += 1
    b = v.order[m, p]
    n = v.size[b]
    i = _index_in_block(v, b, key)
    for j in range(n, i, -1):
        v.keys[b, j] = v.keys[b, j - 1]
        v.vals[b, j] = v.vals[b, j - 1]
    v.keys[b, i] = key
    v.vals[b, i] = val
    v.size[b] = n + 1
    if i == n:
        v.last[m, p] = key
    v.nkeys[m] += 1


@njit
def remove_at(v, m, p, i):
    """Remove the key at position (p, i) of map ``m``; returns its value."""
    b = v.order[m, p]
    val = v.vals[b, i]
    n = v.size[b] - 1
    for j in range(i, n):
        v.keys[b, j] = v.keys[b, j + 1]
        v.vals[b, j] = v.vals[b, j + 1]
    v.size[b] = n
    v.nkeys[m] -= 1
    if n == 0:
        _close_position(v, m, p)
    elif i == n:
        v.last[m, p] = v.keys[b, n - 1]
    return val


@njit
def remove(v, m, key):
    """Remove ``key`` (present) from map ``m``; returns its value."""
    p, i = find(v, m, key)
    assert p >= 0, "sorted blocks: key not present"
    return remove_at(v, m, p, i)


@njit
def items(v, m):
    """All keys and values of map ``m`` in key order."""
    n = v.nkeys[m]
    out_k = np.empty(n, dtype=np.int64)
    out_v = np.empty(n, dtype=np.int64)
    j = 0
    for p in range(v.nblocks[m]):
        b = v.order[m, p]
        for i in range(v.size[b]):
            out_k[j] = v.keys[b, i]
            out_v[j] = v.vals[b, i]
            j += 1
    return out_k, out_v
