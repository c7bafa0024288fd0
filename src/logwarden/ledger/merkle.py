"""The RFC 6962 Merkle tree: hashes, roots, inclusion and consistency proofs (RFC 9162 2.1).

Leaves are hashed as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left ||
right), and the empty tree's hash is SHA-256 of nothing. The tree over n leaves splits at
the largest power of two smaller than n, so its root is the fold, right to left, of the
roots of the perfect subtrees that make up n (its "compact range", kept by `Frontier`).

Proofs are built from the list of leaf hashes as RFC 9162 2.1.3.1 (PATH) and 2.1.4.1
(SUBPROOF) define them, and checked with the algorithms of 2.1.3.2 and 2.1.4.2, so a
proof made here verifies with any RFC 9162 implementation and the other way round.
Standard library only: the offline verifier imports this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "consistency_proof",
    "fold",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

#: The root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


class Frontier:
    """The compact range of a growing tree: the roots of its perfect subtrees, left first.

    Appending a leaf costs one node hash on average; `root()` folds the list. `hashes`
    holds the subtree roots for the binary digits of `size`, largest subtree first.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} subtree roots")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order."""
        stack = self.hashes
        n = self.size
        for leaf in leaves:
            stack.append(leaf)
            m = n
            while m & 1:
                right = stack.pop()
                stack[-1] = _sha256(b"\x01" + stack[-1] + right).digest()
                m >>= 1
            n += 1
        self.size = n

    def root(self) -> bytes:
        """The Merkle Tree Hash of the leaves so far."""
        return fold(self.hashes)


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a tree from the roots of its perfect subtrees, largest first (a
    frontier's `hashes`); the empty tree's root for none."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc


def root(leaves: Sequence[bytes], lo: int = 0, hi: int | None = None) -> bytes:
    """The Merkle Tree Hash of the leaf hashes `leaves[lo:hi]`."""
    f = Frontier()
    f.extend(leaves[lo:hi] if (lo or hi is not None) else leaves)
    return f.root()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """The audit path of leaf `index` in the tree of the first `size` leaf hashes."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of {size} (of {len(leaves)} known)")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(root(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(root(leaves, lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], old: int, new: int) -> list[bytes]:
    """The proof that the tree of `old` leaves is a prefix of the tree of `new` leaves."""
    if not 0 <= old <= new <= len(leaves):
        raise ValueError(f"no consistency proof from {old} to {new} (of {len(leaves)} known)")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(root(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(root(leaves, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(root(leaves, lo, hi))
    proof.reverse()
    return proof


def _root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2 steps 1-5: the root the path leads to, or None if it cannot fit."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether `path` proves leaf hash `leaf` is leaf `index` of the tree `(size, root_hash)`."""
    if index < 0 or size < 0:
        return False
    return _root_from_path(index, size, leaf, path) == root_hash


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows tree `(old, old_root)` is a prefix of tree `(new, new_root)`.

    RFC 9162 2.1.4.2, with the edge cases of equal sizes (empty proof, equal roots) and of
    the empty old tree (empty proof) handled as RFC 9162 implementations do.
    """
    if old < 0 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # an exact power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
