"""``robocell improve``: the champion/challenger loop and the policy registry it keeps.

Each round trains a challenger from the current champion (:mod:`.warm_start`), evaluates both
on a validation seed set, promotes only when the challenger is better by a stated test
(:mod:`.decision`), and records the lineage in the policy registry (:mod:`.policy_registry`).
"""
