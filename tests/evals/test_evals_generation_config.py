"""Every generation setting of an evaluation is typed and bounded, so a config that could only
fail (or fill the GPU) once the run is under way is refused when the evaluation is created."""

import pytest

from mlcore.generation import GenerationConfig


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_prompt_tokens": 10**9}, "max_prompt_tokens must be in 1..32768, got 1000000000"),
        ({"max_prompt_tokens": 0}, "max_prompt_tokens must be in 1..32768, got 0"),
        ({"max_new_tokens": 4097}, "max_new_tokens must be in 1..4096, got 4097"),
        ({"batch_size": True}, "batch_size must be an integer, got True"),
        ({"max_new_tokens": "64"}, "max_new_tokens must be an integer, got '64'"),
        ({"temperature": 1e300}, "temperature must be in (0, 100], got 1e+300"),
        ({"temperature": float("nan")}, "temperature must be a finite number, got nan"),
        ({"top_p": 0}, "top_p must be in (0, 1], got 0"),
        ({"do_sample": "yes"}, "do_sample must be true or false, got 'yes'"),
    ],
)
def test_out_of_bounds_generation_settings_are_refused(values, message):
    with pytest.raises(ValueError) as refused:
        GenerationConfig.from_dict(values)

    assert str(refused.value) == message


def test_the_bounds_themselves_are_accepted():
    config = GenerationConfig.from_dict({"max_prompt_tokens": 32768, "max_new_tokens": 4096, "batch_size": 1024, "temperature": 100, "top_p": 1.0, "do_sample": True})

    assert config.as_dict() == {"max_new_tokens": 4096, "batch_size": 1024, "do_sample": True, "temperature": 100, "top_p": 1.0, "max_prompt_tokens": 32768}


@pytest.mark.django_db
def test_the_api_refuses_an_unbounded_prompt_window(project, api_client, evaluation_setup):
    response = api_client.post(
        "/api/v1/projects/safety/evaluations/", {"suite": "core@1", "checkpoint_a": "tiny@1", "checkpoint_b": "tiny@2", "generation": {"max_prompt_tokens": 10**9}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Invalid generation config: max_prompt_tokens must be in 1..32768, got 1000000000",
        "fields": {"generation": ["max_prompt_tokens must be in 1..32768, got 1000000000"]},
    }
