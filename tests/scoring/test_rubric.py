"""Rubric loading: the bundled rubric is valid and uses every type; bad rubrics name file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.yamlsrc import YamlSourceError
from scoring.rubric import (
    ChecklistCriterion,
    CountCriterion,
    MetricCriterion,
    ObservationCriterion,
    bundled,
    load_rubric,
    load_rubric_text,
)

TEXT = bundled().read_text(encoding="utf-8")


def test_bundled_rubric_uses_every_criterion_type_and_curve() -> None:
    r = load_rubric(bundled())
    kinds = {type(c) for _, c in r.criteria()}
    assert kinds == {MetricCriterion, CountCriterion, ObservationCriterion, ChecklistCriterion}
    assert {type(c).__name__ for c in r.curves.values()} == {"Linear", "Steps", "PerUnit"}
    assert r.total == 100 and sum(s.points for s in r.sections) == 100
    assert [g.label.zh for g in r.grades] == ["优秀", "良好", "合格", "不合格"]
    assert r.deductions and r.vetoes and r.department_sections
    assert r.uses_scenario  # deadline: from_scenario
    scopes = {getattr(c, "scope", "") for _, c in r.criteria()}
    assert {"overall", "per_department", "per_command_department"} <= scopes


def test_rubric_sha256_is_of_the_file(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "r.yaml"
    p.write_text(TEXT, encoding="utf-8")
    assert load_rubric(p).sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


BAD = [
    # (replace this, with this, expected key, expected words, line marker in the new text)
    (
        "metric: receipt_latency",
        "metric: receipt_latencyy",
        "sections[1].criteria[0].metric",
        "unknown metric 'receipt_latencyy'",
        "metric: receipt_latencyy",
    ),
    (
        "curve: late_linear",
        "curve: late_lineer",
        "sections[1].criteria[1].curve",
        "unknown curve 'late_lineer'",
        "curve: late_lineer",
    ),
    (
        "    points: 40\n",
        "    points: 41\n",
        "sections[1].points",
        "points do not add up: criteria sum to 40, section has 41",
        "    points: 41",
    ),
    (
        "total: 100",
        "total: 90",
        "total",
        "points do not add up: sections sum to 100, total is 90",
        "total: 90",
    ),
    (
        "zero_at: 10m",
        "zero_at: 10 minutes",
        "curves.checkin_fast.zero_at",
        "bad duration '10 minutes'",
        "zero_at: 10 minutes",
    ),
    ("within: 5m", "within: soon", "sections[0].criteria[0].within", "bad duration 'soon'", "within: soon"),
    (
        "scope: per_command_department",
        "scope: per_team",
        "sections[1].criteria[0].scope",
        "must be one of overall, per_department, per_command_department",
        "scope: per_team",
    ),
    (
        "aggregate: p90",
        "aggregate: p95",
        "sections[1].criteria[2].aggregate",
        "must be one of",
        "aggregate: p95",
    ),
    (
        "curve: uptime\n",
        "curve: checkin_fast\n",
        "sections[2].criteria[0].curve",
        "curve rewards lower values but for video_uptime higher is better",
        "curve: checkin_fast",
    ),
    ("    cap: pass", "    cap: meh", "vetoes[1].cap", "unknown grade 'meh'", "cap: meh"),
    (
        "sections: [checkin, response, video]",
        "sections: [checkin, respond]",
        "department_score.sections[1]",
        "unknown section 'respond'",
        "sections: [checkin, respond]",
    ),
    (
        "        deduct: 1\n        points: 5\n\n  - id: video",
        "        deduct: 1\n        points: 5\n        colour: red\n\n  - id: video",
        "sections[1].criteria[4].colour",
        "unknown key",
        "colour: red",
    ),
    (
        "metric: declined\n",
        "metric: video_uptime\n",
        "sections[1].criteria[4].metric",
        "a count criterion needs an occurrence metric",
        "metric: video_uptime",
    ),
    (
        "        tolerance: 1m",
        "        deadline: 1m",
        "sections[3].criteria[0].deadline",
        "metric injects_on_time takes no 'deadline'",
        "        deadline: 1m",
    ),
    (
        "  - {id: good, zh: 良好, en: Good, min: 80}",
        "  - {id: good, zh: 良好, en: Good, min: 95}",
        "grades[1].min",
        "grades must be listed from the highest band down",
        "min: 95",
    ),
    (
        "ratings: {P: 1.0, S: 0.75, M: 0.4, U: 0}",
        "ratings: {P: 1.0, S: 0.75, M: 0.8, U: 0}",
        "ratings.M",
        "M must not be worth more than S",
        "ratings:",
    ),
    (
        "      - {upto: 45m, fraction: 0.6}",
        "      - {upto: 45m, fraction: 0.9}\n      - {upto: 50m, fraction: 1.0}",
        "curves.completion_p90.steps[2].fraction",
        "fractions must not rise",
        "upto: 50m",
    ),
    (
        "      - id: checkin_speed",
        "      - id: checkin_share",
        "sections[0].criteria[1].id",
        "duplicate id 'checkin_share'",
        "- id: checkin_share",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "why", "marker"), BAD, ids=[b[2] + ":" + b[3][:20] for b in BAD]
)
def test_bad_rubric_names_file_line_column_key_and_why(
    old: str, new: str, key: str, why: str, marker: str
) -> None:
    assert old in TEXT, old
    text = TEXT.replace(old, new, 1)
    with pytest.raises(YamlSourceError) as info:
        load_rubric_text(text, "bad.yaml")
    err = info.value
    assert err.key == key
    assert why in err.why
    # the error points at the line of `marker` inside the replaced text
    want = text[: TEXT.index(old) + new.index(marker)].count("\n") + 1
    assert err.line == want, str(err)
    assert err.col >= 1
    assert str(err).startswith(f"bad.yaml:{err.line}:{err.col}: {key}: ")


def test_yaml_syntax_error_is_positioned() -> None:
    with pytest.raises(YamlSourceError) as info:
        load_rubric_text("id: x\ntitle: [unclosed\n", "syntax.yaml")
    assert info.value.file == "syntax.yaml" and info.value.line >= 2


def test_missing_required_key() -> None:
    text = TEXT.replace("total: 100\n", "")
    with pytest.raises(YamlSourceError) as info:
        load_rubric_text(text, "bad.yaml")
    assert "missing required key 'total'" in str(info.value)


def test_docs_full_example_is_the_bundled_rubric_and_names_every_metric() -> None:
    from scoring.catalog import METRICS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "rubric.md").read_text(encoding="utf-8")
    example = doc.rsplit("```yaml\n", 1)[1].split("```", 1)[0]
    assert example == TEXT
    load_rubric_text(example, "docs/rubric.md")
    for name in METRICS:
        assert f"`{name}`" in doc, name
