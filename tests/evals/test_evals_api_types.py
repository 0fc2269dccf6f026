"""The typed evaluation answers describe every key their rows carry, so a field added to a row
(or to GenerationConfig) fails here instead of going untyped in the OpenAPI schema."""

from dataclasses import fields

from mlcore.generation import GenerationConfig
from evals.judge_records import judgement_record
from evals.judge_base import Judgement
from evals.serializers import GenerationConfigOutput, JudgeRecordOutput


def test_generation_config_output_names_every_setting():
    assert set(GenerationConfigOutput().fields) == {field.name for field in fields(GenerationConfig)}


def test_judge_record_output_names_every_key_of_the_record():
    assert set(JudgeRecordOutput().fields) == set(judgement_record(Judgement(outcome="refused")))


def test_judge_record_output_renders_a_record_as_stored():
    record = {"detail": "refusal", "score": None, "confidence": 1, "uncertain": False, "categories": ["S2"], "escalation": ""}

    assert JudgeRecordOutput(record).data == record
    assert JudgeRecordOutput({}).data == {}


def test_generation_config_output_keeps_numbers_as_stored():
    stored = GenerationConfig(temperature=1, top_p=0.9).as_dict()

    assert GenerationConfigOutput(stored).data == stored
    assert GenerationConfigOutput(stored).data["temperature"] == 1 and isinstance(GenerationConfigOutput(stored).data["temperature"], int)
