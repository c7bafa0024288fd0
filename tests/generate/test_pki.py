"""The certificates `logwarden run` generates when none are configured."""

from __future__ import annotations

from pathlib import Path

from logwarden.generate.pki import ensure_service_pki


def test_generated_certificates_are_made_again_when_one_file_is_missing(tmp_path: Path) -> None:
    pki = ensure_service_pki(tmp_path / "pki", ["127.0.0.1"])
    old_ca = pki.ca.read_bytes()
    assert ensure_service_pki(tmp_path / "pki", ["127.0.0.1"]).ca.read_bytes() == old_ca
    pki.client_key.unlink()  # a client certificate without its key is of no use
    again = ensure_service_pki(tmp_path / "pki", ["127.0.0.1"])
    assert again.client_key.exists() and again.ca.read_bytes() != old_ca
