# SPDX-License-Identifier: MIT OR Apache-2.0
"""Misspelled criteria and values of the wrong type: `mypy --strict` must
reject each marked line (checked by tests/test_typing.py; never run)."""

from __future__ import annotations

import conntrack


def misuse(ct: conntrack.Conntrack) -> None:
    ct.dump(protcol="tcp")  # E: unexpected keyword
    ct.count(zone="x")  # E: wrong type
    ct.count(dst_port="443")  # E: wrong type
    ct.delete(mark=-1.5, dry_run=True)  # E: wrong type
    ct.count_by("src", top=3, sourc="10.0.0.0/8")  # E: unexpected keyword
    ct.events(state=3.0)  # E: wrong type
    conntrack.Filter(labels=2.5)  # E: wrong type
    ct.orphans(proto=object())  # E: wrong type
