"""The form that starts an unlearning run from a checkpoint page."""
import json

from django import forms

from versions.models import DatasetVersion


class DatasetVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.dataset.name} v{obj.number} ({obj.row_count} rows)"


class UnlearningStartForm(forms.Form):
    method = forms.ChoiceField(choices=(), label="Method")
    hyperparameters = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Hyperparameters (JSON object)",
                                      initial="{}", help_text='Defaults are filled in, e.g. {"learning_rate": 1e-4, "max_steps": 50}.')
    forget_dataset_version = DatasetVersionChoiceField(queryset=DatasetVersion.objects.none(), label="Forget dataset version")
    retain_dataset_version = DatasetVersionChoiceField(queryset=DatasetVersion.objects.none(), required=False, label="Retain dataset version")
    seed = forms.IntegerField(min_value=0, initial=0, label="Seed")
    branch_label = forms.CharField(required=False, max_length=100, label="Branch label",
                                   help_text="A label that follows this run's output when it points at the parent.")

    def __init__(self, *args, project, methods, **kwargs):
        super().__init__(*args, **kwargs)
        versions = DatasetVersion.objects.filter(dataset__project=project, dataset__kind="text").select_related("dataset").order_by("dataset__name", "-number")
        self.fields["forget_dataset_version"].queryset = versions
        self.fields["retain_dataset_version"].queryset = versions
        self.fields["method"].choices = [(name, name) for name in methods]

    def clean_hyperparameters(self):
        raw = (self.cleaned_data.get("hyperparameters") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Expected a JSON object, e.g. {}.")
        return value
