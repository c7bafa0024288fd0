"""The tamper-evident ledger: every record in an RFC 6962 Merkle log with signed checkpoints.

One module per concern: `merkle` (tree, proofs), `note` (C2SP signed notes, Ed25519),
`checkpoint` (tlog-checkpoint bodies), `segments` (byte formats), `layout` (files and
directories), `keys` (key files), `writer` (appending, checkpoints, sealing), `anchor`
(the external copy), `sink` (the writer as a pipeline sink), `verify` and `report` (the
offline verifier), `prove` (inclusion and consistency proofs). The on-disk format is in
docs/ledger.md.

This package imports nothing itself: the verifier's modules need only the standard library
and `cryptography`, and importing `logwarden.ledger.verify` must stay that light.
"""

__all__: list[str] = []
