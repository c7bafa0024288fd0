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


def _flip(b64: str) -> str:
    data = bytearray(base64.b64decode(b64))
    data[0] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def test_an_inclusion_proof_must_carry_its_entry_and_a_record_that_is_the_entry(
    ledger: Path,
) -> None:
    newest = prove.ledger_checkpoints(ledger, [KEY])[-1]
    proof = json.loads(json.dumps(prove.inclusion(ledger, 42, newest)))  # as a file holds it
    prove.check_proof(proof, [KEY])
    prove.check_proof({k: v for k, v in proof.items() if k != "record"}, [KEY])
    forged = {**proof["record"], "raw": '{"kind":"Event","auditID":"forged"}'}
    without_entry = {k: v for k, v in proof.items() if k != "entry"}
    with pytest.raises(NoteError, match="entry is missing"):
        prove.check_proof(without_entry, [KEY])
    with pytest.raises(NoteError, match="entry is missing"):
        prove.check_proof({**without_entry, "record": forged}, [KEY])
    record = proof["record"]
    for field, value in (
        ("raw", record["raw"].replace('"', "'", 1)),
        ("source", "journald"),
        ("instance", record["instance"] + ".1"),
        ("seq", record["seq"] + 1),
        ("seq", str(record["seq"])),
        ("received_ns", record["received_ns"] - 1),
        ("received_ns", float(record["received_ns"])),
    ):
        with pytest.raises(NoteError, match=rf"record\.{field} differs"):
            prove.check_proof({**proof, "record": {**record, field: value}}, [KEY])
    with pytest.raises(NoteError, match=r"record\.raw is missing"):
        unraw = {k: v for k, v in record.items() if k != "raw"}
        prove.check_proof({**proof, "record": unraw}, [KEY])
    with pytest.raises(NoteError, match=r"record\.user is not in the entry"):
        prove.check_proof({**proof, "record": {**record, "user": "alice"}}, [KEY])
    with pytest.raises(NoteError, match="record is not a JSON object"):
        prove.check_proof({**proof, "record": record["raw"]}, [KEY])


def test_a_consistency_proof_must_carry_the_signed_sizes_and_roots(ledger: Path) -> None:
    checkpoints = prove.ledger_checkpoints(ledger, [KEY])
    cons = json.loads(json.dumps(prove.consistency(ledger, checkpoints[3], checkpoints[-1])))
    prove.check_proof(cons, [KEY])
    for field in ("old_root", "new_root"):
        with pytest.raises(NoteError, match=f"{field} differs from the signed"):
            prove.check_proof({**cons, field: _flip(cons[field])}, [KEY])
        with pytest.raises(NoteError, match=f"{field} is missing"):
            prove.check_proof({k: v for k, v in cons.items() if k != field}, [KEY])
    for field in ("old_size", "new_size"):
        with pytest.raises(NoteError, match=f"{field} differs from the signed"):
            prove.check_proof({**cons, field: cons[field] + 1}, [KEY])
