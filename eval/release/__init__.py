"""Payment release: contracts, the release decision, and the append-only hash-chained ledger.

A release verifies a certificate (:mod:`robocell.eval.verify`) against a contract
(:mod:`.contract`) and the delivered bundle, and records the outcome exactly once in the ledger
(:mod:`.ledger`, stored by :mod:`.store_sqlite`).
"""
