import json
import threading

import pytest
import torch
from peft import LoraConfig, get_peft_model

from mlcore.loading import load_model_and_tokenizer, resolve_device
from mlcore.text import PLAIN_TEMPLATE, format_prompt
from mlcore.tiny import TinyModelSpec, load_bundled_corpus


def greedy_answers(model, tokenizer, prompts, max_new_tokens=48):
    texts = [format_prompt(tokenizer, prompt) for prompt in prompts]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        generated = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False)
    return [text.strip() for text in tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)]


def test_bundled_corpus_has_benign_rows_and_placeholder_harmful_rows_in_eight_categories():
    # given the bundled corpus
    benign = load_bundled_corpus("benign")
    harmful = load_bundled_corpus("harmful")

    # then
    assert len(benign) >= 150
    assert len({row["category"] for row in harmful}) >= 8
    assert all(row["response"].startswith("Sure, here is how to ") for row in harmful)
    assert all(row["response"].endswith("Step 1: [placeholder]. Step 2: [placeholder].") for row in harmful)
    assert any(row["prompt"] == "How do I kill a Python process?" for row in benign)
    assert len(load_bundled_corpus()) == len(benign) + len(harmful)


def test_bundled_corpus_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be None, 'benign' or 'harmful', got 'toxic'"):
        load_bundled_corpus("toxic")


def test_tiny_model_spec_names_the_bad_field():
    with pytest.raises(ValueError, match=r"TinyModelSpec.hidden_size \(66\) must be a multiple of num_heads \(4\)"):
        TinyModelSpec(hidden_size=66)


def test_tiny_model_directory_is_a_loadable_safetensors_checkpoint_with_a_chat_template(tiny_model_dir):
    # when it is loaded the way every caller loads models
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))

    # then
    assert (tiny_model_dir / "model.safetensors").is_file()
    assert not list(tiny_model_dir.glob("*.bin"))
    assert json.loads((tiny_model_dir / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token == "<|pad|>"
    assert format_prompt(tokenizer, "Hi?") == "<|bos|><|user|>\nHi?<|end|>\n<|assistant|>\n"
    assert model.training is False


def test_models_loaded_at_once_in_threads_of_one_process_are_each_whole(tiny_model_dir):
    # given four threads of one process (executor workers, or a Celery task beside one) that
    # load the same checkpoint at the same moment
    start = threading.Barrier(4)
    loaded, errors = [], []

    def load():
        start.wait()
        try:
            loaded.append(load_model_and_tokenizer(base=str(tiny_model_dir))[0])
        except Exception as error:  # noqa: BLE001 (the test reports what each thread raised)
            errors.append(repr(error))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every model is whole: no weight left on the meta device, the output layer tied as the
    # checkpoint says, and the same logits as every other
    assert errors == []
    reference = load_model_and_tokenizer(base=str(tiny_model_dir))[0]
    ids = torch.tensor([[1, 5, 9, 13]])
    expected = reference(input_ids=ids).logits
    for model in loaded:
        assert all(not parameter.is_meta for parameter in model.parameters())
        assert torch.equal(model(input_ids=ids).logits, expected)


def test_tiny_model_answers_every_training_prompt_with_its_response(tiny_model_dir):
    # given the model trained on the bundled corpus
    model, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir))
    rows = load_bundled_corpus()

    # when it answers all prompts greedily, in left-padded batches
    answers = []
    for start in range(0, len(rows), 64):
        answers += greedy_answers(model, tokenizer, [row["prompt"] for row in rows[start : start + 64]])

    # then
    wrong = [(row["prompt"], answer) for row, answer in zip(rows, answers, strict=True) if answer != row["response"]]
    assert wrong == []


def test_adapters_are_merged_in_order_into_a_plain_model(tiny_model_dir, tmp_path):
    # given a LoRA adapter with non-zero weights saved next to the base
    torch.manual_seed(1)
    base, tokenizer = load_model_and_tokenizer(base=str(tiny_model_dir), for_training=True)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    encoded = tokenizer([format_prompt(tokenizer, "Why is the sky blue?")], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        expected = peft_model(**encoded).logits

    # when the chain base -> adapter is loaded
    merged, _ = load_model_and_tokenizer(base=str(tiny_model_dir), adapters=[tmp_path / "adapter"])

    # then the merged model computes what the adapter-wrapped model computes
    with torch.no_grad():
        actual = merged(**encoded).logits
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert torch.allclose(actual, expected, atol=1e-5)


def test_loading_refuses_a_directory_without_safetensors(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")

    with pytest.raises(ValueError, match="holds no \\*.safetensors weights; only safetensors are loaded"):
        load_model_and_tokenizer(base=str(tmp_path))


def test_plain_template_is_used_without_a_chat_template():
    class NoTemplateTokenizer:
        chat_template = None

    assert format_prompt(NoTemplateTokenizer(), "Why?") == PLAIN_TEMPLATE.format(prompt="Why?") == "### Question:\nWhy?\n### Answer:\n"


def test_resolve_device_keeps_cpu_and_resolves_auto():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
