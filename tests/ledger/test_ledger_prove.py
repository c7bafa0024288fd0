"""Inclusion and consistency proofs from a real ledger, checked as a third party would."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from ledger_helpers import build_ledger, real_records

from logwarden.ledger import merkle, note, prove
from logwarden.ledger.note import NoteError

SIGNER = note.generate("prove-test.logwarden.invalid/log")
KEY = SIGNER.verifier()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prove") / "ledger"
    build_ledger(path, SIGNER, real_records())
    return path


def test_inclusion_proof_for_every_position_kind(ledger: Path) -> None:
    newest = prove.ledger_checkpoints(ledger, [KEY])[-1]
    size = newest.checkpoint.size
    for index in (0, 1, size // 2, size - 1):
        proof = prove.inclusion(ledger, index, newest)
        assert prove.check_proof(proof, [KEY]).startswith(f"entry {index} is in the tree")
        # the JSON form is all a third party needs
        again = json.loads(json.dumps(proof))
        leaf = merkle.leaf_hash(base64.b64decode(again["entry"]))
        path = [base64.b64decode(p) for p in again["path"]]
        assert merkle.verify_inclusion(index, size, leaf, path, newest.checkpoint.root)


def test_inclusion_by_audit_id(ledger: Path) -> None:
    record = real_records()[100]
    audit_id = json.loads(record.raw)["auditID"]
    found = prove.find_audit_id(ledger, audit_id)
    assert 100 in found
    newest = prove.ledger_checkpoints(ledger, [KEY])[-1]
    for index in found:
        proof = prove.inclusion(ledger, index, newest)
        assert json.loads(proof["record"]["raw"])["auditID"] == audit_id
        prove.check_proof(proof, [KEY])
    assert prove.find_audit_id(ledger, "no-such-audit-id") == []


def test_consistency_between_every_pair_of_some_checkpoints(ledger: Path) -> None:
    checkpoints = prove.ledger_checkpoints(ledger, [KEY])
    picks = [checkpoints[0], checkpoints[1], checkpoints[len(checkpoints) // 2], checkpoints[-1]]
    for old in picks:
        for new in picks:
            if old.checkpoint.size <= new.checkpoint.size:
                proof = prove.consistency(ledger, old, new)
                assert "is a prefix of" in prove.check_proof(proof, [KEY])


def test_tampered_proofs_fail(ledger: Path) -> None:
    newest = prove.ledger_checkpoints(ledger, [KEY])[-1]
    proof = prove.inclusion(ledger, 42, newest)
    for change in (
        {"index": 43},
        {"entry": base64.b64encode(b"\x01forged").decode()},
        {"path": proof["path"][:-1]},
        {"root": base64.b64encode(b"\x00" * 32).decode()},
        {"checkpoint": proof["checkpoint"].replace("\n\n", "\nextra\n\n")},
    ):
        with pytest.raises(NoteError):
            prove.check_proof({**proof, **change}, [KEY])
    with pytest.raises(NoteError, match="trusted key"):
        prove.check_proof(proof, [note.generate("someone/else").verifier()])
    old = prove.ledger_checkpoints(ledger, [KEY])[3]
    cons = prove.consistency(ledger, old, newest)
    with pytest.raises(NoteError):
        prove.check_proof({**cons, "path": list(reversed(cons["path"]))}, [KEY])
