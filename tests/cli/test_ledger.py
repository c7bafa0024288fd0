"""`logwarden keygen`, `ledger import`, `verify`, `prove` and `verify-proof`, end to end."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from logwarden.cli import main
from logwarden.ledger.segments import Header, read_frames

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO = FIXTURES / "audit" / "demo.log"
FULL = FIXTURES / "audit" / "demo-full-v1beta1-2017.log"
TRACES = FIXTURES / "falco" / "falcosecurity-falco@0.34.1" / "test" / "trace_files" / "k8s_audit"


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, str]:
    key = tmp_path / "keys" / "ledger.key"
    assert main(["keygen", "--name", "cli-test.logwarden.invalid/log", "--out", str(key)]) == 0
    printed = capsys.readouterr().out.strip()
    return key, key.with_name("ledger.key.pub"), printed


def test_keygen_writes_a_private_key_only_its_owner_reads(keys: tuple[Path, Path, str]) -> None:
    key, pub, printed = keys
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("PRIVATE+KEY+cli-test.logwarden.invalid/log+")
    assert pub.read_text().strip() == printed
    assert printed.startswith("cli-test.logwarden.invalid/log+") and printed.count("+") >= 2
    assert main(["keygen", "--out", str(key)]) == 2  # never overwritten by accident


def test_keygen_bad_paths_are_usage_errors_that_say_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    a_dir = tmp_path / "dir"
    a_dir.mkdir()
    (tmp_path / "k.pub").mkdir()
    for out, message in (
        (a_file / "ledger.key", f"{a_file} is not a directory"),
        (a_file / "sub" / "ledger.key", f"{a_file / 'sub'} is not a directory"),
        (a_dir, f"{a_dir}: is a directory"),
        (tmp_path / "k", f"{tmp_path / 'k.pub'}: is a directory"),
        ("", "--out: empty path"),
    ):
        for force in ([], ["--force"]):
            assert main(["keygen", "--out", str(out), *force]) == 2
            err = capsys.readouterr().err
            assert message in err and "already exists" not in err and "Traceback" not in err
    assert not (tmp_path / "k").exists()  # no private key left without its verifier key


def test_keygen_force_replaces_a_key_and_makes_it_private(
    keys: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub, printed = keys
    key.chmod(0o644)
    assert main(["keygen", "--name", "cli-test.logwarden.invalid/log", "--out", str(key)]) == 2
    assert main(["keygen", "--out", str(key), "--force"]) == 0
    new = capsys.readouterr().out.strip()
    assert new != printed and pub.read_text().strip() == new
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ledger = tmp_path / "ledger"
    assert main(["ledger", "import", str(ledger), str(DEMO), "--key", str(key)]) == 0
    assert main(["verify", str(ledger), "--key", new]) == 0  # the printed key, as given
    assert main(["verify", str(ledger), "--key", printed]) == 1


def test_import_verify_prove_and_check_the_proof(
    keys: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub, _ = keys
    ledger, anchor = tmp_path / "ledger", tmp_path / "anchor"
    args = ["ledger", "import", str(ledger), str(DEMO), str(FULL), "--key", str(key)]
    assert main([*args, "--anchor", str(anchor), "--segment-mb", "1"]) == 0
    assert "appended 794 records from 2 files" in capsys.readouterr().err
    assert main(["verify", str(ledger), "--anchor", str(anchor), "--key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert "integrity:    OK" in out and "completeness: OK" in out and "entries       794" in out

    proof = tmp_path / "proof.jsonl"
    audit_id = json.loads(FULL.read_text().splitlines()[10])["auditID"]
    assert main(["prove", str(ledger), "--audit-id", audit_id, "-o", str(proof)]) == 0
    assert main(["verify-proof", str(proof), "--key", str(pub)]) == 0
    assert ": OK: entry " in capsys.readouterr().out
    cons = tmp_path / "cons.jsonl"
    assert main(["prove", str(ledger), "--consistency", "0", "-o", str(cons)]) == 0
    assert main(["verify-proof", str(cons), "--key", str(pub)]) == 0
    assert "is a prefix of the tree of size 794" in capsys.readouterr().out


def test_verify_fails_on_tampering_and_names_the_entry(
    keys: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub, _ = keys
    ledger = tmp_path / "ledger"
    assert main(["ledger", "import", str(ledger), str(DEMO), "--key", str(key)]) == 0
    seg = next((ledger / "segments").iterdir())
    data = bytearray(seg.read_bytes())
    data[-40] ^= 0x01
    seg.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", str(ledger), "--key", str(pub)]) == 1
    out = capsys.readouterr().out
    assert "integrity:    FAILED" in out
    assert "first bad entry: 36: " in out and "checksum mismatch" in out
    other = tmp_path / "other.key"
    assert main(["keygen", "--name", "cli-test.logwarden.invalid/log", "--out", str(other)]) == 0
    assert main(["verify", str(ledger), "--key", f"{other}.pub"]) == 1
    assert "not signed by a trusted key" in capsys.readouterr().out


def test_usage_errors(keys: tuple[Path, Path, str], tmp_path: Path) -> None:
    key, pub, _ = keys
    ledger = tmp_path / "ledger"
    missing = tmp_path / "missing.key"
    assert main(["ledger", "import", str(ledger), str(DEMO), "--key", str(missing)]) == 2
    key.chmod(0o644)
    assert main(["ledger", "import", str(ledger), str(DEMO), "--key", str(key)]) == 2
    key.chmod(0o600)
    assert main(["verify", str(ledger), "--key", str(key)]) == 2  # a private key
    assert main(["verify", str(tmp_path / "nothing"), "--key", str(pub)]) == 1


def test_bad_input_is_an_error_that_names_the_file_not_a_crash(
    keys: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub, _ = keys
    assert main(["keygen", "--name", "has space", "--out", str(tmp_path / "k2")]) == 2
    ledger = tmp_path / "ledger"
    assert main(["ledger", "import", str(ledger), str(DEMO), "--key", str(key)]) == 0
    seg = next((ledger / "segments").iterdir())
    data = seg.read_bytes()
    *_, (last, _) = read_frames(data, Header.decode(data).length)
    seg.write_bytes(data[: last + 5])  # the last signed entry cut inside its frame head
    capsys.readouterr()
    assert main(["prove", str(ledger), "--index", "3", "--key", str(pub)]) == 1
    assert f"{seg}@{last}: entry 36 is cut short" in capsys.readouterr().err
    assert main(["verify", str(ledger), "--key", str(pub)]) == 1
    assert "were removed (truncated)" in capsys.readouterr().out


def test_import_counts_rejected_input_and_goes_on(
    keys: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub, _ = keys
    ledger = tmp_path / "ledger"
    assert main(["ledger", "import", str(ledger), str(TRACES), "--key", str(key)]) == 1
    err = capsys.readouterr().err
    assert "fal_01_003.json:1:" in err and "1 rejected" in err
    assert main(["verify", str(ledger), "--key", str(pub)]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["verify", "L", "--max-age", "nan"],
            "argument --max-age: expected a number of seconds > 0",
        ),
        (
            ["verify", "L", "--max-age", "-5"],
            "argument --max-age: expected a number of seconds > 0",
        ),
        (["prove", "L", "--index", "-1"], "argument --index: expected an integer >= 0, got '-1'"),
        (
            ["prove", "L", "--index", "0", "--size", "x"],
            "argument --size: expected an integer >= 0",
        ),
    ],
)
def test_bad_option_values_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --max-age nan had passed a frozen ledger; --index -1 was an input error (exit 1)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_verify_proof_of_a_directory_says_what_is_wrong_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-proof", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"logwarden: {tmp_path}: cannot read: Is a directory\n"
