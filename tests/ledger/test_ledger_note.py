"""C2SP signed notes: the sumdb/note vector, key IDs and key strings, and malformed notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logwarden.ledger import note
from logwarden.ledger.checkpoint import Checkpoint, open_checkpoint
from logwarden.ledger.note import NoteError, Signer, Verifier

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "tlog" / "vectors.json").read_text()
)
EXAMPLE = VECTORS["signed_note_example"]
# A published sumdb/note signer and verifier key pair (transparency-dev examples, "Test-Betty").
BETTY = "PRIVATE+KEY+Test-Betty+df84580a+Afge8kCzBXU7jb3cV2Q363oNXCufJ6u9mjOY1BGRY9E2"
BETTY_PUB = "Test-Betty+df84580a+AQQASqPUZoIHcJAF5mBOryctwFdTV1E0GRY4kEAtTzwB"


def test_the_sumdb_note_example_verifies() -> None:
    key = Verifier.parse(EXAMPLE["verifier_key"])
    assert key.name == "PeterNeumann"
    assert f"{key.id:08x}" == "c74f20a3"
    assert note.key_id(key.name, key.public) == key.id
    assert key.encode() == EXAMPLE["verifier_key"]
    text, signers = note.open_note(EXAMPLE["note"].encode(), [key])
    assert text.startswith("If you think cryptography")
    assert signers == [key]


def test_changing_any_byte_of_the_text_fails() -> None:
    key = Verifier.parse(EXAMPLE["verifier_key"])
    data = EXAMPLE["note"].encode()
    text_len = len(note.parse_note(data)[0].encode())
    for i in range(text_len - 1):  # the final newline is part of the format
        changed = bytearray(data)
        changed[i] = ord("x") if changed[i] != ord("x") else ord("y")
        with pytest.raises(NoteError):
            note.open_note(bytes(changed), [key])


def test_signer_key_string_gives_the_published_verifier_key() -> None:
    signer = Signer.parse(BETTY)
    assert signer.verifier().encode() == BETTY_PUB
    assert signer.encode() == BETTY
    assert "Afge8" not in repr(signer)


def test_sign_and_open_round_trip_with_unknown_signers_ignored() -> None:
    a, b = note.generate("a.example/log"), note.generate("b.example/log")
    signed = note.sign("hello\n\nworld\n", a, b)
    text, good = note.open_note(signed, [a.verifier()])
    assert text == "hello\n\nworld\n"
    assert good == [a.verifier()]
    with pytest.raises(NoteError, match="not signed by a trusted key"):
        note.open_note(signed, [note.generate("c.example/log").verifier()])


def test_same_name_other_key_is_unknown_and_bad_signature_fails() -> None:
    a = note.generate("a.example/log")
    impostor = note.generate("a.example/log")
    signed = note.sign("text\n", impostor)
    with pytest.raises(NoteError, match="not signed by a trusted key"):
        note.open_note(signed, [a.verifier()])
    text, sigs = note.parse_note(note.sign("text\n", a))
    forged = note.Signature(sigs[0].name, sigs[0].id, impostor.sign(b"text\n")).line()
    with pytest.raises(NoteError, match="invalid signature"):
        note.open_note(f"{text}\n{forged}".encode(), [a.verifier()])


@pytest.mark.parametrize(
    "data",
    [
        b"no blank line\n- x y\n",
        b"text\n\nnot a signature line\n",
        b"text\n\n\xe2\x80\x94 name !!notbase64!!\n",
        b"text\n\n\xe2\x80\x94 name AAAA\n",
        b"text\x01\n\n\xe2\x80\x94 name AAAAAAAA\n",
        b"\xff\n\n\xe2\x80\x94 name AAAAAAAA\n",
    ],
)
def test_malformed_notes_are_rejected(data: bytes) -> None:
    with pytest.raises(NoteError):
        note.open_note(data, [note.generate("name").verifier()])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there"])
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(NoteError):
        note.generate(name)


def test_verifier_key_with_wrong_id_is_rejected() -> None:
    with pytest.raises(NoteError, match="key ID"):
        Verifier.parse(BETTY_PUB.replace("df84580a", "df84580b"))


def test_checkpoint_body_round_trip() -> None:
    signer = note.generate("example.com/log")
    ckpt = Checkpoint("example.com/log", 20852163, b"\x01" * 32, ("time 5",))
    assert (
        ckpt.text()
        == "example.com/log\n20852163\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\ntime 5\n"
    )
    signed = open_checkpoint(ckpt.sign(signer), [signer.verifier()], "here")
    assert signed.checkpoint == ckpt
    assert signed.checkpoint.time_ns == 5


@pytest.mark.parametrize(
    "text",
    ["o\n01\nAQ==\n", "o\n1\nnot base64\n", "o\n1\nAQ==\n", "o\n-1\n" + "A" * 43 + "=\n", "o\n1\n"],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)
