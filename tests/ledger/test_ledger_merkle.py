"""RFC 6962 roots against the reference vectors; proofs against the RFC's definitions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.ledger import merkle

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "tlog" / "vectors.json").read_text()
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle Tree Hash, recursively, straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_rfc6962_reference_roots() -> None:
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves_hex"]]
    for n, expected in enumerate(VECTORS["roots_hex"]):
        assert merkle.root(leaves[:n]).hex() == expected
        frontier = merkle.Frontier()
        frontier.extend(leaves[:n])
        assert frontier.root().hex() == expected


def test_empty_tree_and_hash_prefixes() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@settings(max_examples=150, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_inclusion_proofs(size: int, data: st.DataObject) -> None:
    leaves = leaves_of(size)
    root = mth(leaves)
    assert merkle.root(leaves) == root
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    path = merkle.inclusion_proof(leaves, index, size)
    assert merkle.verify_inclusion(index, size, leaves[index], path, root)
    # any other leaf, index or a changed path fails (the size is bound only by the path's shape)
    assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"other"), path, root)
    if size > 1:
        assert not merkle.verify_inclusion((index + 1) % size, size, leaves[index], path, root)
        bad = list(path)
        bad[data.draw(st.integers(0, len(bad) - 1))] = b"\0" * 32
        assert not merkle.verify_inclusion(index, size, leaves[index], bad, root)
        assert not merkle.verify_inclusion(index, size, leaves[index], path[:-1], root)


@settings(max_examples=150, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs(new: int, data: st.DataObject) -> None:
    leaves = leaves_of(new)
    old = data.draw(st.integers(min_value=0, max_value=new))
    old_root, new_root = mth(leaves[:old]), mth(leaves)
    proof = merkle.consistency_proof(leaves, old, new)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    if 0 < old < new:
        other = merkle.leaf_hash(b"forked")
        forked = mth([*leaves[: old - 1], other])
        assert not merkle.verify_consistency(old, new, forked, new_root, proof)
        assert not merkle.verify_consistency(old, new, old_root, merkle.EMPTY_ROOT, proof)
        bad = list(proof)
        bad[data.draw(st.integers(0, len(bad) - 1))] = b"\0" * 32
        assert not merkle.verify_consistency(old, new, old_root, new_root, bad)


def test_consistency_edge_cases() -> None:
    leaves = leaves_of(8)
    root = mth(leaves)
    assert merkle.verify_consistency(8, 8, root, root, [])
    assert not merkle.verify_consistency(8, 8, root, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, root, [])
    assert not merkle.verify_consistency(4, 8, mth(leaves[:4]), root, [])
    assert not merkle.verify_consistency(9, 8, root, root, [])


def test_frontier_matches_recursive_definition_for_every_size() -> None:
    leaves = leaves_of(70)
    frontier = merkle.Frontier()
    for n, leaf in enumerate(leaves, 1):
        frontier.append(leaf)
        assert frontier.root() == mth(leaves[:n])
        assert len(frontier.hashes) == n.bit_count()
