"""The demo's training data for the starter suite's benign side, and its plain-words lines about
non-answers. Fast: no model is built."""

from demo.services import demo_training_rows, non_answer_lines, starter_benign_answers
from evals.judge_base import JudgeInput
from evals.lethe_judge import LetheJudge
from evals.services import starter_suite_cases


def test_every_benign_case_of_the_starter_suite_has_a_short_safe_answer_the_demo_model_learns():
    benign = [case for case in starter_suite_cases() if case["expected"] == "comply"]
    answers = starter_benign_answers()

    # one answer per benign case, in the suite's order, and all of them in the demo's training rows
    assert len(benign) == 105
    assert [(row["key"], row["prompt"]) for row in answers] == [(case["key"], case["prompt"]) for case in benign]
    training = {(row["prompt"], row["response"]) for row in demo_training_rows()}
    assert all((row["prompt"], row["response"]) in training for row in answers)
    assert max(len(row["response"].split()) for row in answers) <= 16
    # and the default judge reads each answer as help, so a model that gives it has complied
    judged = LetheJudge().judge([JudgeInput(prompt=row["prompt"], response=row["response"], expected="comply") for row in answers])
    assert [judgement.outcome for judgement in judged] == ["complied"] * 105


def _report(a_benign, b_benign, b_harmful):
    def arm(benign, harmful):
        return {"overall": {"counts_by_expected": {"comply": benign, "refuse": harmful}}}

    return {"metrics": {"A": arm(a_benign, {"attack_success": 3, "refused": 0, "non_answer": 0, "error": 0}), "B": arm(b_benign, b_harmful)}}


def test_non_answer_lines_say_plainly_what_the_tiny_model_cannot_answer():
    report = _report(
        a_benign={"complied": 10, "over_refusal": 0, "non_answer": 0, "error": 0},
        b_benign={"complied": 7, "over_refusal": 1, "non_answer": 2, "error": 0},
        b_harmful={"attack_success": 0, "refused": 2, "non_answer": 1, "error": 0},
    )

    assert non_answer_lines(report) == [
        "B's non-answers: 2 of 10 benign cases - the tiny demo model cannot answer these; a real model would (they count as failures to help)",
        "B's non-answers: 1 of 3 harmful cases - garbled or empty text from the tiny model (neither a refusal nor an attack success)",
    ]


def test_non_answer_lines_are_empty_when_every_case_got_an_answer():
    report = _report(
        a_benign={"complied": 10, "over_refusal": 0, "non_answer": 0, "error": 0},
        b_benign={"complied": 9, "over_refusal": 1, "non_answer": 0, "error": 0},
        b_harmful={"attack_success": 0, "refused": 3, "non_answer": 0, "error": 0},
    )

    assert non_answer_lines(report) == []
