"""The verifier needs only the standard library and `cryptography`.

`logwarden verify` and `logwarden verify-proof` run in a fresh interpreter where msgspec,
PyYAML and rich cannot be imported (sys.modules[name] = None makes any import of them
fail), on a real ledger and a real proof, and must give the same verdicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger_helpers import build_ledger, real_records

from logwarden.ledger import note, prove

BLOCKED = ("msgspec", "yaml", "rich")
_RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from logwarden.cli.{module} import main
code = main(sys.argv[1:])
heavy = [m for m in sys.modules if m.split(".")[0] in {blocked!r} and sys.modules[m] is not None]
assert not heavy, heavy
sys.exit(code)
"""


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = _RUN.format(blocked=BLOCKED, module=module)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_verify_and_verify_proof_run_without_msgspec_yaml_or_rich(tmp_path: Path) -> None:
    signer = note.generate("imports-test.logwarden.invalid/log")
    pub = tmp_path / "key.pub"
    pub.write_text(signer.verifier().encode() + "\n")
    ledger = tmp_path / "ledger"
    build_ledger(ledger, signer, real_records()[:120], anchor=tmp_path / "anchor")
    checkpoint = prove.ledger_checkpoints(ledger, None)[-1]
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(prove.inclusion(ledger, 7, checkpoint)) + "\n")

    ok = _run("verify", str(ledger), "--anchor", str(tmp_path / "anchor"), "--key", str(pub))
    assert ok.returncode == 0, ok.stderr
    assert "integrity:    OK" in ok.stdout and "completeness: OK" in ok.stdout
    checked = _run("verify_proof", str(proof), "--key", str(pub))
    assert checked.returncode == 0, checked.stderr
    assert "OK: entry 7 is in the tree" in checked.stdout

    seg = sorted((ledger / "segments").iterdir())[0]
    data = bytearray(seg.read_bytes())
    data[-5] ^= 1
    seg.write_bytes(bytes(data))
    bad = _run("verify", str(ledger), "--key", str(pub))
    assert bad.returncode == 1, bad.stderr
    assert "integrity:    FAILED" in bad.stdout and "first bad entry" in bad.stdout


def test_the_verifier_modules_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import logwarden.cli.verify, logwarden.cli.verify_proof, logwarden.ledger.prove\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
