"""What makes a benchmark fail: goals read from the metric labels, a missed or missing figure fails."""

from __future__ import annotations

import json

import pytest

from benchmarks.shared import finish, percentile, verdicts


def test_goals_are_read_from_the_labels() -> None:
    rows = verdicts({"speed (goal >= 0.9)": 1.2, "latency, s (goal <= 0.5)": 0.7, "note": 3.0})
    assert rows == [("speed", 1.2, ">= 0.9", "pass"), ("latency, s", 0.7, "<= 0.5", "FAIL"), ("note", 3.0, "-", "-")]
    assert verdicts({"missing figure (goal >= 1)": float("nan")})[0][3] == "FAIL"


@pytest.mark.parametrize("as_json", [True, False])
def test_a_missed_goal_is_a_nonzero_exit(as_json: bool, capsys: pytest.CaptureFixture[str]) -> None:
    assert finish({"benchmark": "x", "ratios": {"a (goal >= 1)": 2}}, as_json) == 0
    assert finish({"benchmark": "x", "ratios": {"a (goal >= 1)": 2, "b (goal <= 1)": 2}}, as_json) == 1
    if as_json:
        last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert last["passed"] is False and last["ratios"]["b (goal <= 1)"] == 2


def test_percentiles() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 50, nearest_rank=True) == 2.0
    assert percentile(values, 95, nearest_rank=True) == 4.0
    assert percentile([], 50) != percentile([], 50)  # NaN
