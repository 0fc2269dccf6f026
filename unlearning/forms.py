"""The form that starts an unlearning run from a checkpoint page."""

from django import forms

from core.errors import LetheError
from versions.forms import json_object_from_text
from versions.models import DatasetVersion
from versions.selectors import dataset_version_resolve


class DatasetVersionRefField(forms.ChoiceField):
    """A dataset version of the project, offered and posted as ``dataset@number`` (what the API
    shows) and resolved by ``versions.selectors.dataset_version_resolve``, like every write."""

    project = None

    def set_project(self, project):
        self.project = project
        versions = DatasetVersion.objects.filter(dataset__project=project).select_related("dataset").order_by("dataset__name", "-number")
        self.choices = [("", "---------")] + [(f"{v.dataset.name}@{v.number}", f"{v.dataset.name} v{v.number} ({v.row_count} rows)") for v in versions]

    def valid_value(self, value):
        return True  # the resolver says what is wrong with a value that is not offered

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        try:
            return dataset_version_resolve(project=self.project, ref=value)
        except LetheError as exc:
            raise forms.ValidationError(str(exc)) from None


class UnlearningStartForm(forms.Form):
    method = forms.ChoiceField(choices=(), label="Method")
    hyperparameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Hyperparameters (JSON object)",
        initial="{}",
        help_text='Defaults are filled in, e.g. {"learning_rate": 1e-4, "max_steps": 50}.',
    )
    forget_dataset_version = DatasetVersionRefField(label="Forget dataset version")
    retain_dataset_version = DatasetVersionRefField(required=False, label="Retain dataset version")
    seed = forms.IntegerField(min_value=0, initial=0, label="Seed")
    branch_label = forms.CharField(required=False, max_length=100, label="Branch label", help_text="A label that follows this run's output when it points at the parent.")

    def __init__(self, *args, project, methods, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["forget_dataset_version"].set_project(project)
        self.fields["retain_dataset_version"].set_project(project)
        self.fields["method"].choices = [(name, name) for name in methods]

    def clean_hyperparameters(self):
        return json_object_from_text(self.cleaned_data.get("hyperparameters"))
