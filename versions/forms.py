"""Forms of the registry pages. They check shape only; the services decide what is allowed and
their errors are attached to the field they concern (see ``form_add_service_error``)."""

import json

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from core.errors import LetheError
from core.safe_json import json_loads, json_unstorable_text
from versions.throttling import sign_in_locked_message, sign_in_retry_after


class LockoutMessageMixin:
    """A sign-in form that says so when too many attempts failed. The message is the same
    whether the username exists or not, and the password is not checked while locked
    (``ThrottledModelBackend`` refuses it anyway)."""

    retry_after = 0

    def clean(self):
        username = self.cleaned_data.get("username")
        self.retry_after = sign_in_retry_after(request=self.request, username=username)
        if self.retry_after:
            raise forms.ValidationError(sign_in_locked_message(self.retry_after), code="locked")
        return super().clean()


class SignInForm(LockoutMessageMixin, AuthenticationForm):
    pass


class AdminSignInForm(LockoutMessageMixin, AdminAuthenticationForm):
    pass


class LabelMoveForm(forms.Form):
    """The label page's move: the target is picked in the version picker (radio buttons named
    ``target``, rendered by the template). ``preview=True`` (the Preview button) asks only for
    the target and the evaluation; the move itself also needs a reason and the confirmation, and,
    when the latest evaluation between the two versions measured the target less safe, the
    acknowledgement."""

    target = forms.IntegerField(min_value=1, label="Move to version", help_text="Pick the version the label should point at.")
    evaluation = forms.IntegerField(
        min_value=1, required=False, label="Evaluation id (optional)", help_text="An evaluation to cite; required by the promotion gate when the project has one."
    )
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the label history and the audit trail.")
    confirm = forms.BooleanField(label="I confirm this label move", help_text="Every move is recorded and visible to the project.")
    acknowledge_less_safe = forms.BooleanField(
        required=False,
        label="I acknowledge the target was measured less safe",
        help_text="Required when the latest evaluation between the two versions measured the target less safe; recorded in the audit trail.",
    )
    # The target the shown preview was for: a move to another one previews it first.
    previewed = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, preview=False, **kwargs):
        super().__init__(*args, **kwargs)
        if preview:
            self.fields["reason"].required = self.fields["confirm"].required = False


class DiffForm(forms.Form):
    """Two version numbers, typed (``old``, ``new``) or ticked in the history table (``v``
    twice: the lower is the old one)."""

    old = forms.IntegerField(min_value=1, label="Old version")
    new = forms.IntegerField(min_value=1, label="New version")

    def __init__(self, data=None, *args, **kwargs):
        picked = data.getlist("v") if data is not None and hasattr(data, "getlist") else []
        self.picked_error = None
        if picked:
            data = data.copy()
            numbers = sorted({int(value) for value in picked if value.isdigit()})
            if len(numbers) == 2:
                data["old"], data["new"] = str(numbers[0]), str(numbers[1])
            else:
                self.picked_error = f"Tick exactly two versions to compare ({len(numbers)} ticked)."
        super().__init__(data, *args, **kwargs)
        if self.picked_error:
            # The one message that matters is how many were ticked, not two empty fields.
            self.fields["old"].required = self.fields["new"].required = False

    def clean(self):
        if self.picked_error:
            raise forms.ValidationError(self.picked_error)
        return super().clean()


def json_object_from_text(raw):
    """The JSON object typed into a text area ({} when empty), or a ValidationError that says
    what is wrong with it: not JSON (with its line and column), nested too deep, not an object,
    or holding text no database can store."""
    raw = (raw or "").strip()
    if not raw:
        return {}
    try:
        value = json_loads(raw)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    if not isinstance(value, dict):
        raise forms.ValidationError("Expected a JSON object, e.g. {}.")
    path = json_unstorable_text(value)
    if path is not None:
        raise forms.ValidationError(f"Text at {path} holds a NUL character or a lone surrogate, which cannot be stored.")
    return value


def form_add_service_error(form, error: LetheError, *, default_field=None):
    """Show a service's error message next to the first form field it names (``fields`` keys
    such as ``"hyperparameters.learning_rate"`` name the ``hyperparameters`` field), else next to
    ``default_field`` (None: above the form)."""
    named = [name.split(".")[0] for name in (error.fields or {})]
    matched = [name for name in named if name in form.fields]
    form.add_error(matched[0] if matched else default_field, str(error))
