"""Raw text -> byte-level BPE token ids in numba: the kernels behind `text.BpeEncoder.text_ids`.

`encode_words` does what `text.normalized_words` + `BpeEncoder.batch_ids` do, from raw texts: ASCII texts
are lower-cased, split and cut on their bytes (`_is_split_space`, as `str.split()`), words are looked up
in a hash table of numpy arrays (`WordTable`: open addressing, 64-bit FNV-1a keys compared byte for byte;
a text's first word, a later word with its leading space, or a pre-tokenizer piece), and a new ASCII word
is split into the pieces of the ByteLevel pre-tokenizer regex (`_piece_end`, the ASCII classes of
`text._ASCII_PIECES`) and each new piece merged by the BPE model's own algorithm (`_bpe_piece`, identical
to `tokenizers`' `Word::merge_all`: lowest-ranked pair first, leftmost on a tie). On the recall
benchmark's 2,625 documents (2.26 MB, one core) it takes 0.027 s cold and 0.017 s warm, against 0.118 s
and 0.050 s for `normalized_words` + `batch_ids`.

What falls back to the exact Python path of `text.BpeEncoder` (`_WordIds`, the tokenizer's own model):
non-ASCII texts are normalised in Python and their non-ASCII words are left `pending` for it (then stored
in the table too), as are words with a byte that has no token; a model with BPE options the numba merge
does not implement (dropout, subword prefix or suffix, ignore_merges) sends every new word there
(`bpe_tables`' use_bpe); without numba, `text_ids` is `batch_ids` of `normalized_words` altogether.
tests/recall/test_fast_encoder.py checks the ids are identical to the Python path's and to `tokenizers`'.
"""

from __future__ import annotations

import json

import numpy as np
from tokenizers import Tokenizer

try:
    import numba
except ImportError:  # then `text.BpeEncoder.text_ids` is `batch_ids` of `normalized_words` (the Python reference)
    numba = None


def byte_chars() -> dict[int, str]:
    """GPT-2's byte -> printable character map, as the ByteLevel pre-tokenizer applies it."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + k) for k, b in enumerate(others)}}


def _jit(fn=None, *, inline: bool = False):
    """`fn` compiled by numba (cached on disk), or None without numba. `inline`: inlined into its callers
    in numba's IR (a call with many array arguments costs their reference counting, about 100 ns). The
    GIL is kept: the kernels update an encoder's table in place, so threads sharing an encoder take turns."""
    if fn is None:
        return lambda f: _jit(f, inline=inline)
    if numba is None:
        return None
    return numba.njit(cache=True, boundscheck=False, inline="always" if inline else "never")(fn)


_FNV_OFFSET, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
"""Keys are hashed with 64-bit FNV-1a; a slot is the top 32 bits of hash * golden ratio (mixes all bits)."""
FIRST, SPACED, PIECE = 0, 1, 2
"""`WordTable` key kinds: a text's first word, a later word (its ids include its leading space), a piece."""
_SCAN_MAX = 32
"""Pieces up to this many bytes are merged by scanning for the lowest-ranked pair, longer ones with a heap."""


@_jit(inline=True)
def _is_split_space(b):
    """ASCII bytes that `str.split()` splits on: \\t \\n \\v \\f \\r, \\x1c-\\x1f and space."""
    return b == 32 or 9 <= b <= 13 or 28 <= b <= 31


@_jit(inline=True)
def _piece_class(b):
    """0 letter, 1 digit, 2 `[ \\t\\n\\v\\f\\r]`, 3 anything else (the classes of `text._ASCII_PIECES`)."""
    if 97 <= b <= 122 or 65 <= b <= 90:
        return 0
    if 48 <= b <= 57:
        return 1
    if b == 32 or 9 <= b <= 13:
        return 2
    return 3


@_jit(inline=True)
def _piece_end(seq, i, n):
    """End of the `text._ASCII_PIECES` match that `findall` finds at `i` of the ASCII bytes `seq[:n]`."""
    b = seq[i]
    if b == 39 and i + 1 < n:  # 's|'t|'re|'ve|'m|'ll|'d
        c = seq[i + 1]
        if c == 115 or c == 116 or c == 109 or c == 100:
            return i + 2
        if i + 2 < n:
            d = seq[i + 2]
            if (c == 114 and d == 101) or (c == 118 and d == 101) or (c == 108 and d == 108):
                return i + 3
    k = i + 1 if b == 32 and i + 1 < n and _piece_class(seq[i + 1]) != 2 else i
    cls = _piece_class(seq[k])
    if cls != 2:  # ' ?[a-zA-Z]+| ?[0-9]+| ?[^ \t\n\v\f\ra-zA-Z0-9]+'
        j = k + 1
        while j < n and _piece_class(seq[j]) == cls:
            j += 1
        return j
    j = i + 1  # '\s+(?!\S)|\s+'
    while j < n and _piece_class(seq[j]) == 2:
        j += 1
    return j if j == n or j - i == 1 else j - 1


@_jit(inline=True)
def _merge_of(merges, a, b, vocab_size):
    """rank << 32 | new id of the merge of token ids (a, b), or -1 when the pair never merges. `merges`
    holds (key a * vocab_size + b or -1, value) pairs, open addressing."""
    key = np.int64(a) * vocab_size + b
    mask = merges.size // 2 - 1
    s = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(32)) & mask
    while True:
        k = merges[2 * s]
        if k == key:
            return merges[2 * s + 1]
        if k < 0:
            return -1
        s = (s + 1) & mask


@_jit
def _build_merges(lefts, rights, new_ids, vocab_size):
    """The `merges` table of `_merge_of` for the ordered merges (rank = index; a later duplicate
    overwrites, as the `tokenizers` MergeMap is built)."""
    size = 16
    while size < 2 * lefts.size:
        size *= 2
    merges = np.full(2 * size, -1, np.int64)
    mask = size - 1
    for r in range(lefts.size):
        key = np.int64(lefts[r]) * vocab_size + rights[r]
        s = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(32)) & mask
        while merges[2 * s] >= 0 and merges[2 * s] != key:
            s = (s + 1) & mask
        merges[2 * s], merges[2 * s + 1] = key, (np.int64(r) << 32) | new_ids[r]
    return merges


@_jit(inline=True)
def _heap_push(hk, hv, size, key, value):
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if hk[parent] <= key:
            break
        hk[i], hv[i] = hk[parent], hv[parent]
        i = parent
    hk[i], hv[i] = key, value
    return size + 1


@_jit(inline=True)
def _heap_pop(hk, hv, size):
    """Drop the smallest key (read hk[0], hv[0] first); the new size."""
    size -= 1
    key, value = hk[size], hv[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and hk[child + 1] < hk[child]:
            child += 1
        if key <= hk[child]:
            break
        hk[i], hv[i] = hk[child], hv[child]
        i = child
    hk[i], hv[i] = key, value
    return size


@_jit  # not inlined: numba compiles it much slower into `encode_words`' loop (measured 1.6x)
def _bpe_piece(seq, lo, hi, byte_ids, merges, vocab_size, sc, sp, sn, sl, hk, hv, out, o):
    """The BPE model's `tokenize` of one pre-tokenizer piece (ASCII bytes seq[lo:hi]) written to out[o:];
    the new end, or -1 when a byte has no token.

    `tokenizers` (`Word::merge_all`) keeps a heap of (rank, position) of mergeable neighbours and merges
    the lowest unless it expired (its pair changed: a merge only ever makes a symbol longer, so the pair
    now at that position would make a longer token, whose id differs). So it always merges the
    lowest-ranked pair of the current symbols, leftmost on a tie: short pieces do that by scanning,
    long ones with the same heap (a scan per merge would be quadratic)."""
    n = hi - lo
    for i in range(n):
        c = byte_ids[seq[lo + i]]
        if c < 0:
            return -1
        sc[i] = c
    if n <= _SCAN_MAX:
        for i in range(n - 1):
            sp[i] = _merge_of(merges, sc[i], sc[i + 1], vocab_size)  # the pair (i, i + 1), -1 for none
        m = n
        while m > 1:
            best, at = -1, -1
            for i in range(m - 1):
                if sp[i] >= 0 and (at < 0 or sp[i] < best):  # rank in the high bits: lowest rank, leftmost
                    best, at = sp[i], i
            if at < 0:
                break
            sc[at] = best & 0xFFFFFFFF
            for i in range(at + 1, m - 1):
                sc[i] = sc[i + 1]
            for i in range(at + 1, m - 2):
                sp[i] = sp[i + 1]
            m -= 1
            if at > 0:
                sp[at - 1] = _merge_of(merges, sc[at - 1], sc[at], vocab_size)
            if at < m - 1:
                sp[at] = _merge_of(merges, sc[at], sc[at + 1], vocab_size)
        for i in range(m):
            out[o] = sc[i]
            o += 1
        return o
    for i in range(n):
        sp[i], sn[i], sl[i] = i - 1, i + 1 if i + 1 < n else -1, 1
    size = 0
    for i in range(n - 1):
        v = _merge_of(merges, sc[i], sc[i + 1], vocab_size)
        if v >= 0:
            size = _heap_push(hk, hv, size, (v >> 32 << 32) | i, v & 0xFFFFFFFF)
    while size > 0:
        key, new_id = hk[0], hv[0]
        size = _heap_pop(hk, hv, size)
        pos = key & 0xFFFFFFFF
        if sl[pos] == 0:
            continue
        nxt = sn[pos]
        if nxt < 0:
            continue
        v = _merge_of(merges, sc[pos], sc[nxt], vocab_size)
        if v < 0 or (v & 0xFFFFFFFF) != new_id:  # an expired entry
            continue
        sc[pos] = new_id
        sl[pos] += sl[nxt]
        sn[pos] = sn[nxt]
        sl[nxt] = 0
        if sn[pos] >= 0:
            sp[sn[pos]] = pos
        prev = sp[pos]
        if prev >= 0:
            v = _merge_of(merges, sc[prev], sc[pos], vocab_size)
            if v >= 0:
                size = _heap_push(hk, hv, size, (v >> 32 << 32) | prev, v & 0xFFFFFFFF)
        nxt = sn[pos]
        if nxt >= 0:
            v = _merge_of(merges, sc[pos], sc[nxt], vocab_size)
            if v >= 0:
                size = _heap_push(hk, hv, size, (v >> 32 << 32) | pos, v & 0xFFFFFFFF)
    for i in range(n):
        if sl[i] != 0:
            out[o] = sc[i]
            o += 1
    return o


@_jit(inline=True)
def _find_or_insert(buf, i, end, lower, kind, slots, e_hash, e_kstart, e_klen, e_kind, e_vstart, e_vlen, keys, state):
    """Entry of the key buf[i:end] (lower-cased ASCII when `lower`) of the given kind and whether it is new
    (then its key is stored and its ids are unset: length -1)."""
    h = (_FNV_OFFSET ^ np.uint64(kind)) * _FNV_PRIME
    for k in range(i, end):
        b = buf[k]
        if lower and 65 <= b <= 90:
            b += 32
        h = (h ^ np.uint64(b)) * _FNV_PRIME
    n = end - i
    mask = slots.size - 1
    s = np.int64((h * _GOLDEN) >> np.uint64(32)) & mask
    while True:
        e = slots[s]
        if e < 0:
            break
        if e_hash[e] == h and e_klen[e] == n and e_kind[e] == kind:
            start = e_kstart[e]
            same = True
            for k in range(n):
                b = buf[i + k]
                if lower and 65 <= b <= 90:
                    b += 32
                if keys[start + k] != b:
                    same = False
                    break
            if same:
                return e, False
        s = (s + 1) & mask
    e = state[0]
    state[0] += 1
    start = state[1]
    for k in range(n):
        b = buf[i + k]
        if lower and 65 <= b <= 90:
            b += 32
        keys[start + k] = b
    state[1] += n
    slots[s] = e
    e_hash[e], e_kstart[e], e_klen[e], e_kind[e], e_vstart[e], e_vlen[e] = h, start, n, kind, 0, -1
    return e, True


@_jit
def room(size):
    """(entries, key bytes, ids) that encoding a text of `size` bytes may add to a `WordTable` at most:
    up to (size + 1) // 2 + 1 words, each with its key and ids (at most one more id than bytes: the
    leading space), and as many pieces, whose keys and ids are no longer than their words'."""
    words = (size + 1) // 2 + 1
    return 2 * words + size, 2 * (size + words), 2 * (size + words)


@_jit
def _put_words(words, word_starts, kinds, ids, id_starts, slots, e_hash, e_kstart, e_klen, e_kind, e_vstart,
               e_vlen, keys, vals, state):
    """Store given token ids of keys (flat UTF-8 bytes and int32 ids with start offsets)."""
    for w in range(kinds.size):
        e, _ = _find_or_insert(words, word_starts[w], word_starts[w + 1], False, kinds[w], slots, e_hash, e_kstart,
                               e_klen, e_kind, e_vstart, e_vlen, keys, state)
        start = state[2]
        for k in range(id_starts[w], id_starts[w + 1]):
            vals[state[2]] = ids[k]
            state[2] += 1
        e_vstart[e], e_vlen[e] = start, state[2] - start


@_jit
def encode_words(buf, starts, modes, max_chars, t, word_entries, word_counts, state, pending, slots, e_hash,
                  e_kstart, e_klen, e_kind, e_vstart, e_vlen, keys, vals, byte_ids, merges, vocab_size, use_bpe):
    """Split texts t, t+1, ... into words (as `text.normalized_words`), write each word's table entry to
    word_entries and each text's number of words to word_counts. A word not in the table is added: when
    it is ASCII (and `use_bpe`) with its ids, from its `_ASCII_PIECES` pieces' ids (looked up, or BPE-merged
    and added), else without (listed in `pending`, for the caller). Returns the text it stopped at: the
    end, or a text the table may not have room for (`room`: grow it and call again).
    Mode 0: raw ASCII text (cut to 2 * max_chars), lower-cased, split on whitespace, its joined words cut
    at max_chars; mode 1: the UTF-8 of `" ".join(normalized_words(text))`, split on single spaces."""
    n_texts = starts.size - 1
    longest = 2
    for u in range(t, n_texts):
        longest = max(longest, starts[u + 1] - starts[u] + 2)
    seq = np.empty(longest, np.uint8)
    sc, sp, sn, sl = np.empty(longest, np.int32), np.empty(longest, np.int64), np.empty(longest, np.int64), np.empty(longest, np.int64)
    hk, hv = np.empty(3 * longest, np.int64), np.empty(3 * longest, np.int32)
    piece_entries = np.empty(longest, np.int64)
    while t < n_texts:
        a, z = starts[t], starts[t + 1]
        more_entries, more_keys, more_ids = room(z - a)
        if (state[0] + more_entries > e_hash.size or 2 * (state[0] + more_entries) > slots.size
                or state[1] + more_keys > keys.size or state[2] + more_ids > vals.size
                or state[3] + (z - a + 1) // 2 + 1 > word_entries.size):
            return t
        lower = modes[t] == 0
        n_words, pos, i = 0, 0, a
        while i <= z:
            if lower:
                while i < z and _is_split_space(buf[i]):
                    i += 1
                if i >= z:
                    break
                j = i
                while j < z and not _is_split_space(buf[j]):
                    j += 1
                if n_words > 0:
                    if pos >= max_chars:
                        break
                    pos += 1
                end = min(j, i + max_chars - pos)
                pos += end - i
            else:
                if z == a:
                    break
                j = i
                while j < z and buf[j] != 32:
                    j += 1
                end = j
            kind = SPACED if n_words > 0 else FIRST
            e, new = _find_or_insert(buf, i, end, lower, kind, slots, e_hash, e_kstart, e_klen, e_kind, e_vstart,
                                     e_vlen, keys, state)
            if new:
                n = -1
                if use_bpe:  # seq: the word with its leading space, if ASCII
                    n, start = 0, e_kstart[e]
                    if kind == SPACED:
                        seq[0] = 32
                        n = 1
                    for k in range(end - i):
                        seq[n] = keys[start + k]
                        n += 1
                        if seq[n - 1] >= 128:
                            n = -1
                            break
                n_pieces, p = 0, 0
                while 0 <= p < n:
                    q = _piece_end(seq, p, n)
                    pe, new_piece = _find_or_insert(seq, p, q, False, PIECE, slots, e_hash, e_kstart, e_klen, e_kind,
                                                    e_vstart, e_vlen, keys, state)
                    if new_piece:
                        o = _bpe_piece(seq, p, q, byte_ids, merges, vocab_size, sc, sp, sn, sl, hk, hv, vals, state[2])
                        if o >= 0:
                            e_vstart[pe], e_vlen[pe] = state[2], o - state[2]
                            state[2] = o
                    if e_vlen[pe] < 0:  # a byte without a token
                        n = -1
                    piece_entries[n_pieces] = pe
                    n_pieces += 1
                    p = q
                if n >= 0:
                    e_vstart[e] = state[2]
                    for k in range(n_pieces):
                        pe = piece_entries[k]
                        for v in range(e_vstart[pe], e_vstart[pe] + e_vlen[pe]):
                            vals[state[2]] = vals[v]
                            state[2] += 1
                    e_vlen[e] = state[2] - e_vstart[e]
                else:
                    pending[state[4]] = e
                    state[4] += 1
            word_entries[state[3]] = e
            state[3] += 1
            n_words += 1
            if end < j or (not lower and j >= z):
                break
            i = j if lower else j + 1
        word_counts[t] = n_words
        t += 1
    return t


@_jit
def gather_ids(word_entries, word_counts, e_vstart, e_vlen, vals):
    """(ids of all texts one after the other, number of ids of each text) from their words' entries."""
    lengths = np.zeros(word_counts.size, np.int64)
    w = 0
    for t in range(word_counts.size):
        for _ in range(word_counts[t]):
            lengths[t] += e_vlen[word_entries[w]]
            w += 1
    ids = np.empty(lengths.sum(), np.int32)
    o = 0
    for w in range(word_entries.size):
        e = word_entries[w]
        start = e_vstart[e]
        for k in range(e_vlen[e]):
            ids[o] = vals[start + k]
            o += 1
    return ids, lengths


@_jit
def _rehash(e_hash, n_entries, size):
    slots = np.full(size, -1, np.int32)
    mask = size - 1
    for e in range(n_entries):
        s = np.int64((e_hash[e] * _GOLDEN) >> np.uint64(32)) & mask
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = e
    return slots


class WordTable:
    """(kind, UTF-8 key) -> token ids, in numpy arrays for numba: a text's first word, a later word (ids
    with its leading space) or a pre-tokenizer piece. Open addressing over `slots` (entry index or -1,
    load <= 1/2); entries: hash, kind, key and ids offsets and lengths (ids length -1: not known yet); keys
    and ids in flat arrays. `state`: entries, key bytes, ids, words written, pending words."""

    FIELDS = (("e_hash", np.uint64), ("e_kstart", np.int64), ("e_klen", np.int64), ("e_kind", np.int64),
              ("e_vstart", np.int64), ("e_vlen", np.int64), ("pending", np.int64))

    def __init__(self, entries: int = 1 << 12) -> None:
        self.state = np.zeros(5, np.int64)
        for name, dtype in self.FIELDS:
            setattr(self, name, np.zeros(entries, dtype))
        self.slots = np.full(2 * entries, -1, np.int32)
        self.keys = np.zeros(8 * entries, np.uint8)
        self.vals = np.zeros(8 * entries, np.int32)

    def __len__(self) -> int:
        return int(self.state[0])

    def arrays(self) -> tuple:
        return (self.slots, self.e_hash, self.e_kstart, self.e_klen, self.e_kind, self.e_vstart, self.e_vlen,
                self.keys, self.vals)

    def reserve(self, entries: int, key_bytes: int, ids: int) -> None:
        """Room for `entries` more entries with `key_bytes` more key bytes and `ids` more ids (doubling)."""
        n, used_keys, used_ids = (int(x) for x in self.state[:3])
        size = self.e_hash.size
        while size < n + entries:
            size *= 2
        if size > self.e_hash.size:
            for name, _ in self.FIELDS:
                setattr(self, name, _grown(getattr(self, name), size))
        if self.slots.size < 2 * (n + entries):
            self.slots = _rehash(self.e_hash, n, max(2 * self.slots.size, _power_of_two(2 * (n + entries))))
        self.keys = _grown(self.keys, _power_of_two(used_keys + key_bytes))
        self.vals = _grown(self.vals, _power_of_two(used_ids + ids))

    def put(self, words: list[bytes], kinds: list[int], ids: list[bytes]) -> None:
        """Store the token ids (int32 bytes) of keys (UTF-8) of the given kinds."""
        if not words:
            return
        word_starts = np.zeros(len(words) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, words), np.int64, len(words)), out=word_starts[1:])
        id_arr = np.frombuffer(b"".join(ids), np.int32)
        id_starts = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, ids), np.int64, len(ids)) // 4, out=id_starts[1:])
        self.reserve(len(words), int(word_starts[-1]), id_arr.size)
        _put_words(np.frombuffer(b"".join(words), np.uint8), word_starts, np.array(kinds, np.int64), id_arr, id_starts,
                   *self.arrays(), self.state)


def _power_of_two(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    if size <= array.size:
        return array
    grown = np.zeros(size, array.dtype)
    grown[: array.size] = array
    return grown


def bpe_tables(tok: Tokenizer) -> tuple | None:
    """`encode_words`' BPE arguments: (token id of each byte's character, -1 if none; `_merge_of`'s
    merges; vocabulary size; use_bpe), None without numba. use_bpe is False, and every new word goes through
    the model's own `tokenize`, for BPE options the numba merge does not implement."""
    if numba is None:
        return None
    model = json.loads(tok.to_str())["model"]
    byte_ids, vocab = np.full(256, -1, np.int32), model.get("vocab", {})
    off = np.full(32, -1, np.int64)
    if (model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix")
            or model.get("end_of_word_suffix") or model.get("ignore_merges")):
        return byte_ids, off, 1, False
    for byte, char in byte_chars().items():
        byte_ids[byte] = vocab.get(char, -1)
    pairs = [m.split(" ") if isinstance(m, str) else m for m in model.get("merges", [])]
    try:
        merges = np.array([(vocab[a], vocab[b], vocab[a + b]) for a, b in pairs], np.int64).reshape(-1, 3)
    except KeyError:
        return byte_ids, off, 1, False
    lefts, rights, new_ids = merges.T
    size = max(vocab.values(), default=0) + 1
    return byte_ids, _build_merges(lefts.copy(), rights.copy(), new_ids.copy(), size), size, True
