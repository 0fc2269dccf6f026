"""The form that starts an A/B evaluation. Choices are limited to the project; the service
validates the rest and its errors are shown next to the field they name."""

import json

from django import forms

from mlcore.generation import GenerationConfig
from evals.models import SuiteVersion
from evals.judges import DEFAULT_JUDGE
from versions.forms import json_object_from_text
from versions.models import Checkpoint, DatasetVersion, PromptVersion

# What the form starts with: every generation setting spelled out, so nothing is a hidden default.
GENERATION_DEFAULTS = GenerationConfig().as_dict()


class CheckpointChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.model.name} #{obj.number} ({obj.kind})"


class PromptVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.prompt.name} v{obj.number}"


class SuiteVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.suite.name} v{obj.number} ({obj.case_count} cases)"


class DatasetVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.dataset.name}@{obj.number} ({obj.row_count} rows)"


class EvaluationStartForm(forms.Form):
    suite_version = SuiteVersionChoiceField(queryset=SuiteVersion.objects.none(), label="Suite version")
    checkpoint_a = CheckpointChoiceField(queryset=Checkpoint.objects.none(), label="Arm A checkpoint (baseline)")
    prompt_version_a = PromptVersionChoiceField(queryset=PromptVersion.objects.none(), required=False, label="Arm A prompt version")
    checkpoint_b = CheckpointChoiceField(queryset=Checkpoint.objects.none(), label="Arm B checkpoint (candidate)")
    prompt_version_b = PromptVersionChoiceField(queryset=PromptVersion.objects.none(), required=False, label="Arm B prompt version")
    judge = forms.ChoiceField(choices=(), label="Judge")
    judge_config = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Judge config (JSON object)", initial="{}")
    generation = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Generation config (JSON object)",
        initial=json.dumps(GENERATION_DEFAULTS),
        help_text=(
            f"These are the defaults. The demo's evaluation generates at most 24 new tokens (a tiny model's answers are "
            f"short), not {GENERATION_DEFAULTS['max_new_tokens']}: to repeat an evaluation exactly, use "
            "“Run again with the same settings” on its report."
        ),
    )
    seed = forms.IntegerField(initial=0, label="Seed")
    statistics = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Statistics config (JSON object)",
        initial="{}",
        help_text="alpha, bootstrap_resamples, confidence, over_refusal_margin, perplexity_ratio_margin; empty for the defaults.",
    )
    utility_dataset_version = DatasetVersionChoiceField(
        queryset=DatasetVersion.objects.none(),
        required=False,
        label="Utility dataset version",
        help_text="Held-out benign text for perplexity; empty for the bundled held-out set.",
    )

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        from evals.judges import JUDGES

        checkpoints = Checkpoint.objects.filter(model__project=project).select_related("model").order_by("model__name", "-number")
        prompt_versions = PromptVersion.objects.filter(prompt__project=project).select_related("prompt").order_by("prompt__name", "-number")
        self.fields["suite_version"].queryset = SuiteVersion.objects.filter(suite__project=project).select_related("suite").order_by("suite__name", "-number")
        self.fields["checkpoint_a"].queryset = checkpoints
        self.fields["checkpoint_b"].queryset = checkpoints
        self.fields["prompt_version_a"].queryset = prompt_versions
        self.fields["prompt_version_b"].queryset = prompt_versions
        self.fields["judge"].choices = [(name, name) for name in JUDGES]
        self.fields["judge"].initial = DEFAULT_JUDGE
        self.fields["utility_dataset_version"].queryset = DatasetVersion.objects.filter(dataset__project=project).select_related("dataset").order_by("dataset__name", "-number")

    def clean_judge_config(self):
        return json_object_from_text(self.cleaned_data.get("judge_config"))

    def clean_generation(self):
        return json_object_from_text(self.cleaned_data.get("generation"))

    def clean_statistics(self):
        return json_object_from_text(self.cleaned_data.get("statistics"))


class JudgementSetVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.dataset.name} v{obj.number} ({obj.row_count} labelled responses)"


class CalibrationStartForm(forms.Form):
    """Measure a judge on a labelled judgement set version (a dataset of kind judgements)."""

    dataset_version = JudgementSetVersionChoiceField(queryset=DatasetVersion.objects.none(), label="Judgement set version")
    judge = forms.ChoiceField(choices=(), label="Judge")
    judge_config = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Judge config (JSON object)",
        initial="{}",
        help_text="The same config an evaluation would pin: a report shows the calibration whose judge name and config hash equal its own.",
    )

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        from evals.calibration_selectors import judgement_sets_for_project
        from evals.judges import JUDGES

        self.fields["dataset_version"].queryset = judgement_sets_for_project(project=project)
        self.fields["judge"].choices = [(name, name) for name in JUDGES]

    def clean_judge_config(self):
        return json_object_from_text(self.cleaned_data.get("judge_config"))


class SuiteVersionBenignForm(forms.Form):
    """Mark a suite version benign, or remove the mark (reviewers)."""

    benign = forms.ChoiceField(choices=[("mark", "mark"), ("unmark", "unmark")], widget=forms.HiddenInput)
    reason = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Recorded in the audit trail.")


def evaluation_start_initial(evaluation):
    """The start form's values that repeat ``evaluation``: same suite version, arms, judge with
    the config it was asked for, generation config, seed, statistics and utility data."""
    judge = evaluation.judge or {}
    statistics = {key: value for key, value in (evaluation.statistics_config or {}).items() if key != "seed"}
    return {
        "suite_version": evaluation.suite_version_id,
        "checkpoint_a": evaluation.checkpoint_a_id,
        "prompt_version_a": evaluation.prompt_version_a_id,
        "checkpoint_b": evaluation.checkpoint_b_id,
        "prompt_version_b": evaluation.prompt_version_b_id,
        "judge": judge.get("name"),
        "judge_config": json.dumps(judge.get("requested_config", judge.get("config", {})), sort_keys=True),
        "generation": json.dumps(evaluation.generation_config, sort_keys=True),
        "seed": evaluation.seed,
        "statistics": json.dumps(statistics, sort_keys=True),
        "utility_dataset_version": evaluation.utility_dataset_version_id,
    }
