"""The label page's move: a version picker, a preview (rollback or promotion, the latest
evaluation between the two versions, the promotion gate's answer) and an explicit acknowledgement
before moving a label to a version measured less safe. Data through the real services."""

import html as html_lib
import re

import pytest

from tests.web import builders
from versions import services
from versions.models import AuditEvent, Label

pytestmark = pytest.mark.django_db
URL = "/p/safety/models/tiny/labels/production/"
WARNING = "Evaluation {id} measured tiny@1 less safe than the current production tiny@2: attack success 100.0% against 0.0%, verdict for tiny@1: less safe."


@pytest.fixture
def promoted(lethe_var, project, user, tiny_pair):
    """production on the complier #1, evaluated against the refuser #2 (B safer), then promoted to #2
    citing that evaluation: moving back to #1 is a rollback to a version measured less safe."""
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    services.label_move(name="production", actor=user, checkpoint=setup["refuser"], evaluation=evaluation, reason="safer")
    return {**setup, "evaluation": evaluation, "warning": WARNING.format(id=evaluation.pk)}


def _text(html, element_id):
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no #{element_id} on the page"
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2))).strip())


def test_rolling_back_to_a_version_measured_less_safe_is_previewed_and_needs_the_acknowledgement(web, project, user, promoted):
    evaluation = promoted["evaluation"]

    # when alice picks #1 and asks for the preview
    preview = web.post(URL, {"step": "preview", "target": "1"})

    # then it says what the move is, what the latest evaluation between #2 and #1 measured, and warns
    html = preview.content.decode()
    assert preview.status_code == 200
    assert _text(html, "preview-summary") == "production: #2 -> #1 (rollback)"
    assert _text(html, "preview-verdict") == "less safe"
    assert re.findall(r"<tr><th scope=\"row\">(.*?)</th><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", html.split('id="preview-metrics"')[1].split("</table>")[0]) == [
        ("current #2", "B", "0.0% (0/6)", "0.0% (0/3)"),
        ("target #1", "A", "100.0% (6/6)", "0.0% (0/3)"),
    ]
    assert _text(html, "less-safe-warning") == f"Measured less safe. {promoted['warning']} Moving there needs the acknowledgement below."
    assert 'name="acknowledge_less_safe"' in html
    assert '<button type="submit" name="step" value="move">Move label</button>' in html
    assert 'id="preview-gate"' not in html  # a rollback needs no evidence and cites none

    # when she confirms without ticking the acknowledgement
    refused = web.post(URL, {"step": "move", "target": "1", "previewed": "1", "reason": "r", "confirm": "on"})

    # then nothing moved, and the page says why, next to the checkbox, with the preview still shown
    assert refused.status_code == 409
    assert [html_lib.unescape(error) for error in refused.context["form"].errors["acknowledge_less_safe"]] == [
        f"{promoted['warning']} Moving 'production' there anyway needs an explicit acknowledgement (acknowledge_less_safe in the "
        "API, --acknowledge-less-safe in move_label, the checkbox on the label page)."
    ]
    assert _text(refused.content.decode(), "preview-summary") == "production: #2 -> #1 (rollback)"
    assert Label.objects.get(name="production").checkpoint == promoted["refuser"]

    # when she ticks it
    moved = web.post(URL, {"step": "move", "target": "1", "previewed": "1", "reason": "r", "confirm": "on", "acknowledge_less_safe": "on"}, follow=True)

    # then the label rolled back and the audit event records what was measured and the acknowledgement
    assert moved.status_code == 200
    assert Label.objects.get(name="production").checkpoint == promoted["complier"]
    assert "production now points at version 1 (rollback). The move was acknowledged as less safe." in moved.content.decode()
    audit = AuditEvent.objects.filter(action="label.move").order_by("-id").first()
    assert audit.data == {
        "name": "production",
        "on": "model:tiny",
        "action": "rollback",
        "from": 2,
        "to": 1,
        "reason": "r",
        "evaluation": None,
        "less_safe_warning": promoted["warning"],
        "acknowledged_less_safe": True,
    }
    assert evaluation.pk  # the evaluation stays what it was


def test_a_move_to_a_target_other_than_the_previewed_one_is_previewed_first(web, promoted):
    # when the page had previewed another target (2) and the picker was changed to #1 before "Move label"
    response = web.post(URL, {"step": "move", "target": "1", "previewed": "2", "reason": "r", "confirm": "on", "acknowledge_less_safe": "on"})

    # then the page previews #1 instead of moving
    assert response.status_code == 200
    assert _text(response.content.decode(), "preview-summary") == "production: #2 -> #1 (rollback)"
    assert Label.objects.get(name="production").checkpoint == promoted["refuser"]


def test_the_query_string_prefills_the_picker_and_the_evaluation_and_shows_the_preview(web, project, user, promoted):
    # given production back on #1 (acknowledged), so promoting #2 again is what "Promote B" of the evaluation opens
    services.label_move(name="production", actor=user, checkpoint=promoted["complier"], acknowledge_less_safe=True)
    evaluation = promoted["evaluation"]

    # when the page opens with ?target=2&evaluation=<id>
    response = web.get(f"{URL}?target=2&evaluation={evaluation.pk}")

    # then #2 is picked, the evaluation filled in, and the preview (a rollback: #2 held production) shows the gate's answer
    html = response.content.decode()
    assert response.status_code == 200
    assert '<input type="radio" name="target" value="2" id="target-2" checked>' in html
    assert '<input type="radio" name="target" value="1" id="target-1">' in html
    assert re.search(rf'<input type="number" name="evaluation" value="{evaluation.pk}"', html)
    assert _text(html, "preview-summary") == "production: #1 -> #2 (rollback)"
    assert _text(html, "preview-verdict") == "safer"
    assert "less-safe-warning" not in html
    assert _text(html, "preview-gate").startswith(f"Promotion gate (not required for this move): evaluation {evaluation.pk} fails:")


def test_the_picker_lists_versions_with_labels_and_latest_verdicts_in_few_queries(web, project, user, promoted, django_assert_max_num_queries):
    services.label_move(name="staging", actor=user, checkpoint=promoted["complier"])
    for index in range(3):
        services.checkpoint_register(model=promoted["model"], kind="reference", actor=user, external_ref=f"org/extra-{index}", message=f"extra {index}")

    with django_assert_max_num_queries(16):
        response = web.get(URL)

    html = response.content.decode()
    rows = re.findall(r'<label for="target-(\d+)">#\d+</label></td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>', html.split('id="version-picker"')[1], re.S)
    cells = [(number, message, re.sub(r"<[^>]+>", " ", labels).split(), re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", latest)).strip()) for number, message, labels, latest in rows]
    evaluation = promoted["evaluation"].pk
    assert cells == [
        ("5", "extra 2", [], "not evaluated"),
        ("4", "extra 1", [], "not evaluated"),
        ("3", "extra 0", [], "not evaluated"),
        ("2", "refuses", ["production"], f"evaluation {evaluation}: safer vs #1, attack success 0.0%"),
        ("1", "complies", ["staging"], f"evaluation {evaluation}: less safe vs #2, attack success 100.0%"),
    ]
