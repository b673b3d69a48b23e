"""Repeated keys in a file: the same record again (merged) or another one (refused, naming the
row that keeps the key), also across a re-upload of payor's own rejected-rows file."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli.fingerprint import payload_fingerprints
from payor_cli.rows import Chunk, RowError
from payor_cli.values import fold_email

KEY_SEPARATOR = "\x1f"
REPEAT_TEXT = "repeats the key of row "


def email_keys(cells: pa.Array) -> pa.Array:
    """`fold_email` of a column (null stays null): Arrow's lower-casing where every cell is
    ASCII (the same result, at Arrow's speed), else once per distinct address."""
    if pc.all(pc.string_is_ascii(cells)).as_py() is not False:
        return pc.utf8_lower(cells)
    encoded = pc.dictionary_encode(cells)
    folded = pa.array([fold_email(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(folded, encoded.indices)


class KeyIndex:
    """The first row of every key seen so far in the file, with its payload's fingerprint,
    kept compact for millions of rows.

    A key is held as its 64-bit hash (24 bytes a row with its row number and fingerprint, in
    sorted numpy arrays), not as a string in a dict, so memory stays small at two million
    rows. Two keys with the same hash would be one chance in about 10^12 at that size; it
    would reject or merge a row naming an earlier row, never send a duplicate.
    """

    NO_PAYLOAD = 0
    """The fingerprint of a first row that was refused: no later row can equal it."""

    def __init__(self) -> None:
        self.hashes = np.empty(0, np.int64)
        self.rows = np.empty(0, np.int64)
        self.prints = np.empty(0, np.int64)

    def repeats(
        self, keys: pa.Array, rows: np.ndarray, prints: np.ndarray
    ) -> dict[int, tuple[int, bool]]:
        """Position in `keys` -> (the earlier row with the same key, whether its payload's
        fingerprint equals this row's). A key is hashed as a payload is, a chunk at once."""
        present = np.flatnonzero(pc.is_valid(keys).to_numpy(zero_copy_only=False))
        if not len(present):
            return {}
        hashes = payload_fingerprints(keys)[present]
        row_numbers = np.asarray(rows, np.int64)[present]
        row_prints = prints[present]
        distinct, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        earlier = row_numbers[first][inverse]
        earlier_prints = row_prints[first][inverse]
        known = np.zeros(len(distinct), bool)
        if len(self.hashes):
            spot = np.minimum(np.searchsorted(self.hashes, distinct), len(self.hashes) - 1)
            known = self.hashes[spot] == distinct
            earlier = np.where(known[inverse], self.rows[spot][inverse], earlier)
            earlier_prints = np.where(known[inverse], self.prints[spot][inverse], earlier_prints)
        repeated = np.flatnonzero(earlier != row_numbers)
        same = (earlier_prints == row_prints) & (row_prints != self.NO_PAYLOAD)
        new = ~known
        where = np.searchsorted(self.hashes, distinct[new])
        self.hashes = np.insert(self.hashes, where, distinct[new])
        self.rows = np.insert(self.rows, where, row_numbers[first][new])
        self.prints = np.insert(self.prints, where, row_prints[first][new])
        return {int(present[i]): (int(earlier[i]), bool(same[i])) for i in repeated}


class KeyChecks:
    """The key checks of one file's chunks, in order (the index remembers every first row)."""

    def __init__(self, key_fields: str) -> None:
        self.key_fields = key_fields
        self.index = KeyIndex()

    def check(
        self,
        chunk: Chunk,
        active_np: np.ndarray,
        key_plain: pa.Array,
        payloads: pa.Array,
        errors: dict[int, list[RowError]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Repeated keys: an equal payload is the same record (merged: the mask returned), a
        different one is refused naming the row that keeps the key. Also returned: each
        row's payload fingerprint (those the journal keeps), where the row was not refused."""
        active_offsets = np.flatnonzero(active_np)
        all_active = len(active_offsets) == len(active_np)
        keys = key_plain if all_active else pc.take(key_plain, pa.array(active_offsets))

        def shown(position: int) -> str | None:
            """The key as a message shows it (only rows with an error need it)."""
            key = keys[position].as_py()
            return key.replace(KEY_SEPARATOR, " / ") if key is not None else None

        key_fields = self.key_fields
        if chunk.prior_errors is not None:
            every_key = [shown(position) for position in range(len(keys))]
            _rejected_again(chunk, active_offsets, every_key, key_fields, errors)
        refused = np.zeros(len(active_np), dtype=bool)
        refused[list(errors)] = True
        clean = np.flatnonzero(~refused[active_offsets])
        prints = np.full(len(active_offsets), KeyIndex.NO_PAYLOAD, np.int64)
        if len(clean):
            every = len(clean) == len(active_np)  # the usual chunk: nothing to pick
            picked = payloads if every else pc.take(payloads, pa.array(active_offsets[clean]))
            found = payload_fingerprints(picked)  # the journal's: equal payloads, equal prints
            prints[clean] = np.where(found == KeyIndex.NO_PAYLOAD, 1, found)
        row_prints = np.zeros(len(active_np), np.int64)
        row_prints[active_offsets] = prints
        merged = np.zeros(len(active_np), dtype=bool)
        rows = active_offsets + chunk.first_row
        for position, (earlier, same) in self.index.repeats(keys, rows, prints).items():
            offset = int(active_offsets[position])
            if same:
                merged[offset] = True
                continue
            if any(e.kind == "duplicate_key" for e in errors.get(offset, [])):
                continue  # refused again already, naming the row of the first upload
            errors.setdefault(offset, []).append(
                _repeat(chunk.first_row + offset, key_fields, str(earlier), shown(position))
            )
        return merged, row_prints


def _rejected_again(
    chunk: Chunk,
    active_offsets: np.ndarray,
    shown: list[str | None],
    key_fields: str,
    errors: dict[int, list[RowError]],
) -> None:
    """A row of payor's rejected-rows file that was refused for repeating a key and comes
    back with that key unchanged is refused again: the original row keeps the key."""
    assert chunk.prior_errors is not None
    prior = pc.take(chunk.prior_errors, pa.array(active_offsets)).to_pylist()
    for position, (before, key) in enumerate(zip(prior, shown, strict=True)):
        if not before or key is None:
            continue
        marker = f'"{key}" {REPEAT_TEXT}'
        start = before.find(marker)
        if start < 0:
            continue
        earlier = re.match(r"\d+", before[start + len(marker) :])
        if earlier is None:
            continue
        offset = int(active_offsets[position])
        kept = f"{earlier.group()} of the first upload, which keeps it: give this row its own key, or delete it"
        errors.setdefault(offset, []).append(
            _repeat(chunk.first_row + offset, key_fields, kept, key)
        )


def _repeat(row: int, key_fields: str, earlier: str, key: str | None) -> RowError:
    """A row refused for repeating the key of `earlier` (a row number, and what it is)."""
    return RowError(row, key_fields, None, "duplicate_key", f"{REPEAT_TEXT}{earlier}", key)
