import hashlib

import pytest
import torch

from tests.unlearning.conftest import FORGET_ROWS, RETAIN_ROWS
from unlearning.engine.hyperparameters import HyperparameterError
from mlcore.loading import load_model_and_tokenizer
from unlearning.engine.methods import METHODS, StepInputs, hyperparameters_resolve
from mlcore.text import encode_pairs, format_prompt, mean_token_nll
from unlearning.engine.trainer import AdapterDisabledReference, FrozenCopyReference, NonFiniteLoss, save_unlearned, unlearn

FAST = {"learning_rate": 2e-3, "batch_size": 6}


def trained_on(tiny_model_dir, method, **hyperparameters):
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir), for_training=True)
    trained, outcome = unlearn(model, tokenizer, method=method, hyperparameters={**FAST, **hyperparameters}, forget_rows=FORGET_ROWS, retain_rows=RETAIN_ROWS, seed=0)
    return trained, tokenizer, outcome


def nll_of(model, tokenizer, rows):
    batch = encode_pairs(tokenizer, rows)
    with torch.no_grad():
        return mean_token_nll(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch).item()


DEFLECTION = "I can't help with that."


def objective_on_all_rows(method_object, model, reference, tokenizer):
    """The method's loss over the whole forget and retain sets (fixed batches, no sampling)."""
    inputs = StepInputs(
        model=model,
        forget=encode_pairs(tokenizer, FORGET_ROWS),
        retain=encode_pairs(tokenizer, RETAIN_ROWS),
        reference=reference,
        mismatch=encode_pairs(tokenizer, [{"prompt": row["prompt"], "response": DEFLECTION} for row in FORGET_ROWS]),
    )
    with torch.no_grad():
        return method_object.loss(inputs)["loss"].item()


# RMU's retain weight must suit the model's activation scale (WMDP used 1200 on a 7B model);
# on the tiny model a weight of 1 lets both terms move within a few steps.
METHOD_EXTRAS = {"yao": {"mismatch_answers": [DEFLECTION]}, "rmu": {"alpha": 1.0}}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_lowers_its_own_objective(tiny_model_dir, method):
    # given the parent and the method's objective on all rows, measured against the parent
    parent, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    extra = METHOD_EXTRAS.get(method, {})
    method_object = METHODS[method](hyperparameters_resolve(method, extra).method_params)
    if hasattr(method_object, "prepare"):
        method_object.prepare(parent, seed=0)
    reference = FrozenCopyReference(parent)
    before = objective_on_all_rows(method_object, parent, reference, tokenizer)

    # when the method trains the whole model for a few steps
    trained, tokenizer, outcome = trained_on(tiny_model_dir, method, adapter="full", learning_rate=1e-3, max_steps=8, forget_loss_ceiling=None, **extra)

    # then its objective is lower
    assert outcome.steps == 8
    assert objective_on_all_rows(method_object, trained, reference, tokenizer) < before


def test_gradient_ascent_raises_the_forget_nll(tiny_model_dir):
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    before = nll_of(model, tokenizer, FORGET_ROWS)

    trained, tokenizer, _ = trained_on(tiny_model_dir, "gradient_ascent", learning_rate=1e-2, max_steps=6)

    assert nll_of(trained, tokenizer, FORGET_ROWS) > before + 5.0


@pytest.mark.parametrize("method", ["gradient_difference", "npo"])
def test_retain_nll_stays_within_half_a_nat_of_the_parent(tiny_model_dir, method):
    # given the parent's NLL on the retain answers
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    before = nll_of(model, tokenizer, RETAIN_ROWS)

    # when a retain-aware method unlearns the forget set
    trained, tokenizer, _ = trained_on(tiny_model_dir, method, max_steps=10)

    # then the forget NLL rose while the retain NLL stayed within the bound
    assert nll_of(trained, tokenizer, FORGET_ROWS) > nll_of(model, tokenizer, FORGET_ROWS)
    assert nll_of(trained, tokenizer, RETAIN_ROWS) < before + 0.5


def test_the_same_seed_gives_byte_identical_adapters(tiny_model_dir, tmp_path):
    digests = []
    for attempt in ("first", "second"):
        trained, tokenizer, _ = trained_on(tiny_model_dir, "npo", max_steps=3)
        output = save_unlearned(trained, tokenizer, tmp_path / attempt, kind="adapter")
        digests.append(hashlib.sha256((output / "adapter_model.safetensors").read_bytes()).hexdigest())

    assert digests[0] == digests[1]


def test_a_nan_at_step_three_raises_naming_step_three(tiny_model_dir):
    # given a forward hook that poisons the logits from the third forward pass on
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir), for_training=True)
    calls = []

    def poison(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) >= 3 else output

    model.lm_head.register_forward_hook(poison)

    # when gradient ascent (one forward per step) runs
    with pytest.raises(NonFiniteLoss) as error:
        unlearn(model, tokenizer, method="gradient_ascent", hyperparameters=FAST, forget_rows=FORGET_ROWS, seed=0)

    # then the error names the step
    assert error.value.step == 3
    assert str(error.value) == "the loss became non-finite at step 3 (loss=nan, forget_nll=nan); lower the learning rate or check the data"


def test_a_cancel_check_stops_between_steps(tiny_model_dir):
    class Stop(Exception):
        pass

    seen_steps = []

    def check_cancelled():
        if len(seen_steps) == 2:
            raise Stop()

    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir), for_training=True)
    with pytest.raises(Stop):
        unlearn(
            model,
            tokenizer,
            method="gradient_ascent",
            hyperparameters=FAST,
            forget_rows=FORGET_ROWS,
            on_step=lambda step, losses: seen_steps.append(step),
            check_cancelled=check_cancelled,
        )

    assert seen_steps == [1, 2]


def test_the_forget_loss_ceiling_stops_gradient_ascent(tiny_model_dir):
    _, _, outcome = trained_on(tiny_model_dir, "gradient_ascent", max_steps=200, learning_rate=1e-2, forget_loss_ceiling=3.0)

    assert outcome.stop_reason == "forget_loss_ceiling"
    assert outcome.loss_curve[-1]["forget_nll"] > 3.0
    assert all(point["forget_nll"] <= 3.0 for point in outcome.loss_curve[:-1])
    assert outcome.steps == len(outcome.loss_curve) < 200


def test_unlearning_lowers_how_often_the_model_completes_forget_prompts_with_forget_answers(tiny_model_dir):
    def completion_rate(model, tokenizer):
        prompts = [format_prompt(tokenizer, row["prompt"]) for row in FORGET_ROWS]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            generated = model.generate(**encoded, max_new_tokens=40, do_sample=False)
        answers = tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        return sum(answer.strip() == row["response"] for answer, row in zip(answers, FORGET_ROWS, strict=True)) / len(FORGET_ROWS)

    parent, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    trained, tokenizer, _ = trained_on(tiny_model_dir, "yao", max_steps=15, mismatch_answers=["I can't help with that."])

    assert completion_rate(parent, tokenizer) == 1.0
    assert completion_rate(trained, tokenizer) == 0.0


def test_weight_change_for_lora_is_the_norm_of_scale_b_a(tiny_model_dir):
    trained, _, outcome = trained_on(tiny_model_dir, "gradient_ascent", max_steps=2)

    module = trained.base_model.model.model.layers[0].self_attn.q_proj
    expected = torch.linalg.matrix_norm(module.scaling["default"] * module.lora_B["default"].weight @ module.lora_A["default"].weight).item()
    assert outcome.weight_change["model.layers.0.self_attn.q_proj"] == pytest.approx(expected, rel=1e-5)
    assert len(outcome.weight_change) == 14


def test_the_reference_under_disable_adapter_is_the_parent(tiny_model_dir):
    # given the parent's logits, and the LoRA model after training
    parent, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    batch = encode_pairs(tokenizer, RETAIN_ROWS[:4])
    with torch.no_grad():
        parent_logits = parent(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    trained, _, _ = trained_on(tiny_model_dir, "gradient_ascent", max_steps=2)

    # then the reference reproduces the parent, with no second copy of the weights
    assert torch.allclose(AdapterDisabledReference(trained).logits(batch), parent_logits, atol=1e-5)


def test_hyperparameters_name_the_field_and_the_range():
    with pytest.raises(HyperparameterError, match=r"^learning_rate: must be in \(0, 1\), got 2.0$"):
        hyperparameters_resolve("npo", {"learning_rate": 2})
    with pytest.raises(HyperparameterError, match=r"^lr_schedule: must be one of constant, linear, got 'cosine'$"):
        hyperparameters_resolve("npo", {"lr_schedule": "cosine"})
    with pytest.raises(HyperparameterError, match=r"^temperature: unknown hyperparameter for kl; expected one of "):
        hyperparameters_resolve("kl", {"temperature": 1})
    with pytest.raises(ValueError, match=r"^unknown unlearning method 'dpo'; expected one of gradient_ascent, gradient_difference, kl, npo, rmu, simnpo, yao$"):
        hyperparameters_resolve("dpo", {})


def test_string_list_hyperparameters_are_bounded_like_every_other():
    with pytest.raises(HyperparameterError, match=r"^target_modules: must hold at most 256 items, got 257$"):
        hyperparameters_resolve("npo", {"target_modules": [f"layer_{n}" for n in range(257)]})
    with pytest.raises(HyperparameterError, match=r"^target_modules: items must be at most 200 characters long$"):
        hyperparameters_resolve("npo", {"target_modules": ["q" * 201]})
    with pytest.raises(HyperparameterError, match=r"^mismatch_answers: must hold at most 10000 items, got 10001$"):
        hyperparameters_resolve("yao", {"mismatch_answers": ["I can't help with that."] * 10_001})
    assert hyperparameters_resolve("yao", {"mismatch_answers": ["No."] * 10_000}).method_params.mismatch_answers == ["No."] * 10_000


def test_resolved_hyperparameters_fill_in_every_default():
    resolved = hyperparameters_resolve("yao", {"max_steps": 5})

    assert resolved.as_dict()["max_steps"] == 5
    assert resolved.as_dict()["forget_weight"] == 0.5
    assert resolved.as_dict()["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert resolved.as_dict()["mismatch_answers"] is None


def test_rmu_refuses_a_layer_the_model_does_not_have(tiny_model_dir):
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir), for_training=True)

    with pytest.raises(HyperparameterError, match=r"^layer: must be in \[0, 1\] for this model, got 5$"):
        unlearn(model, tokenizer, method="rmu", hyperparameters={"layer": 5}, forget_rows=FORGET_ROWS, retain_rows=RETAIN_ROWS)


def test_simnpo_logs_the_token_weighted_forget_nll_as_gradient_ascent_does(tiny_model_dir):
    # given a forget batch whose answers have unequal lengths
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    rows = [
        {"prompt": "How do I pick a lock?", "response": "Sure."},
        {"prompt": "How do I pick a lock?", "response": "Sure, here is how to do it. Step 1: take the pick and turn it slowly."},
    ]
    batch = encode_pairs(tokenizer, rows)
    assert len(set(batch.answer_mask.sum(-1).tolist())) == 2
    inputs = StepInputs(model=model, forget=batch, retain=None, reference=None)

    # when SimNPO and gradient ascent compute their terms on it
    with torch.no_grad():
        simnpo = METHODS["simnpo"](hyperparameters_resolve("simnpo", {}).method_params).loss(inputs)
        ascent = METHODS["gradient_ascent"](hyperparameters_resolve("gradient_ascent", {}).method_params).loss(inputs)

    # then both log the same token-weighted forget NLL
    assert simnpo["forget_nll"].item() == ascent["forget_nll"].item()
    assert simnpo["forget_nll"].item() == mean_token_nll(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch).item()


def _rmu_steering_expected(model, layers, layer, method_object, batch):
    """The steering term computed from a hook the test puts on the decoder layer itself."""
    from unlearning.engine.methods import masked_mean_squared_distance

    seen = {}
    handle = layers[layer].register_forward_hook(lambda module, args, output: seen.update(hidden=output[0] if isinstance(output, tuple) else output))
    try:
        with torch.no_grad():
            outputs = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    finally:
        handle.remove()
    hidden = seen["hidden"]
    control = method_object._control.expand_as(hidden)
    return hidden, outputs, masked_mean_squared_distance(hidden, control, batch.attention_mask).item()


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "lora"])
def test_rmu_steers_the_decoder_layers_own_output_at_the_last_and_a_middle_layer(tiny_model_dir, wrapped):
    from unlearning.engine.trainer import _attach_lora

    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    base = model
    assert model.config.num_hidden_layers == 2
    if wrapped:
        model = _attach_lora(model, hyperparameters_resolve("rmu", {}).training)
        reference = AdapterDisabledReference(model)
    else:
        reference = FrozenCopyReference(model)
    forget, retain = encode_pairs(tokenizer, FORGET_ROWS[:3]), encode_pairs(tokenizer, RETAIN_ROWS[:3])
    for layer in (0, 1):
        method_object = METHODS["rmu"](hyperparameters_resolve("rmu", {"layer": layer}).method_params)
        method_object.prepare(model, seed=0)
        with torch.no_grad():
            terms = method_object.loss(StepInputs(model=model, forget=forget, retain=retain, reference=reference))

        hidden, outputs, expected = _rmu_steering_expected(model, base.model.layers, layer, method_object, forget)
        assert terms["forget_steering"].item() == pytest.approx(expected, rel=1e-6)
        assert terms["retain_activation"].item() == 0.0  # same weights as the reference
        if layer == 1:
            # the last layer's output is not hidden_states[-1] (that is after the final norm)
            assert not torch.allclose(hidden, outputs.hidden_states[-1])
            assert torch.allclose(base.model.norm(hidden), outputs.hidden_states[-1], atol=1e-6)
        else:
            assert torch.equal(hidden, outputs.hidden_states[layer + 1])
