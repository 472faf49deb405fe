"""The preference merge table, every combination: workflow default < subscriber global < subscriber per-workflow,
`readOnly` ignores subscribers, `critical` cannot be turned off."""

from __future__ import annotations

import itertools

import pytest

from tidings.preferences.merge import Decision, Reason, merge_channel

CHOICES = (None, True, False)
ALL = list(itertools.product((True, False), (True, False), (True, False), CHOICES, CHOICES))


@pytest.mark.parametrize(("default", "read_only", "critical", "global_", "workflow"), ALL)
def test_every_combination(
    default: bool, read_only: bool, critical: bool, global_: bool | None, workflow: bool | None
) -> None:
    decision = merge_channel(
        default=default,
        read_only=read_only,
        critical=critical,
        subscriber_global=global_,
        subscriber_workflow=workflow,
    )
    # The rules, stated independently of the implementation's order of checks:
    if read_only:
        assert decision == Decision(default, Reason.READ_ONLY)
        return
    if critical and default:
        assert decision == Decision(True, Reason.CRITICAL)  # no subscriber choice turns it off
        return
    most_specific = next((choice for choice in (workflow, global_) if choice is not None), None)
    assert decision.enabled == (default if most_specific is None else most_specific)
    expected_reason = (
        Reason.SUBSCRIBER_WORKFLOW
        if workflow is not None
        else Reason.SUBSCRIBER_GLOBAL
        if global_ is not None
        else Reason.WORKFLOW_DEFAULT
    )
    assert decision.reason == expected_reason


def test_the_table_has_all_72_rows() -> None:
    decisions = {
        merge_channel(default=d, read_only=r, critical=c, subscriber_global=g, subscriber_workflow=w)
        for d, r, c, g, w in ALL
    }
    assert len(ALL) == 72
    # Each reason occurs with both outcomes, except CRITICAL, which only ever keeps a channel on.
    assert len(decisions) == 9
    assert Decision(False, Reason.CRITICAL) not in decisions


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # default, read_only, critical, global, workflow
        ((True, False, False, False, None), Decision(False, Reason.SUBSCRIBER_GLOBAL)),
        ((True, False, False, False, True), Decision(True, Reason.SUBSCRIBER_WORKFLOW)),
        ((False, False, False, True, None), Decision(True, Reason.SUBSCRIBER_GLOBAL)),
        ((False, False, False, True, False), Decision(False, Reason.SUBSCRIBER_WORKFLOW)),
        ((True, True, False, False, False), Decision(True, Reason.READ_ONLY)),
        ((False, True, False, True, True), Decision(False, Reason.READ_ONLY)),
        ((True, False, True, False, False), Decision(True, Reason.CRITICAL)),
        ((False, False, True, None, True), Decision(True, Reason.SUBSCRIBER_WORKFLOW)),
        ((True, False, False, None, None), Decision(True, Reason.WORKFLOW_DEFAULT)),
    ],
)
def test_worked_examples(row: tuple[bool, bool, bool, bool | None, bool | None], expected: Decision) -> None:
    default, read_only, critical, global_, workflow = row
    decision = merge_channel(
        default=default, read_only=read_only, critical=critical, subscriber_global=global_, subscriber_workflow=workflow
    )
    assert decision == expected
