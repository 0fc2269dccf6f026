"""Webhooks against a real HTTP server on 127.0.0.1: Standard Webhooks signatures, one real
delivery per documented event, retries, the delivery log, the egress rules at creation and at
every delivery, and that a failing endpoint never blocks or fails the action that triggered it."""

import base64
import hashlib
import hmac
import json

import pytest
import standardwebhooks
from standardwebhooks.webhooks import WebhookVerificationError

from evals import services as eval_services
from evals.judges import DEFAULT_JUDGE
from jobs.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from jobs.services import run_cancel, run_create, run_execute
from jobs.webhooks import webhook_create, webhook_emit, webhook_retry_delay_seconds, webhook_update
from tests.jobs.conftest import RecordingEndpoint, wait_until
from core.errors import ValidationFailed
from versions.services import checkpoint_register, label_move, model_create, prompt_create, prompt_version_commit

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def delivery_settled(hook):
    def settled():
        delivery = WebhookDelivery.objects.filter(webhook=hook).first()
        return delivery if delivery is not None and delivery.status != DeliveryStatus.PENDING else None

    return settled


def verified(received, secret=SECRET):
    """The body of a received POST, as the receiving side reads it: only after Webhook.verify."""
    return standardwebhooks.Webhook(secret).verify(received["body"], received["headers"])


def test_delivery_is_signed_per_standard_webhooks(background, endpoint, project, user):
    # given a hook with a known secret on prompt commits
    hook = webhook_create(project=project, url=endpoint.url, events=["prompt_version.committed"], actor=user, secret=SECRET)

    # when a prompt version is committed
    prompt = prompt_create(project=project, name="system", actor=user)
    version = prompt_version_commit(prompt=prompt, template="You are careful.", actor=user)
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then the endpoint got one POST that the Standard Webhooks library verifies
    [received] = endpoint.requests
    body = verified(received)
    headers = received["headers"]
    assert received["path"] == "/hooks/lethe"
    assert headers["webhook-id"] == str(delivery.pk)
    assert headers["webhook-timestamp"].isdigit()
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["Content-Type"] == "application/json"
    assert (headers["X-Lethe-Event"], headers["X-Lethe-Delivery"]) == ("prompt_version.committed", str(delivery.pk))
    assert body == json.loads(received["body"])
    assert (body["type"], body["event"], body["delivery"], body["project"]) == ("prompt_version.committed", "prompt_version.committed", delivery.pk, "safety")
    assert body["timestamp"] == body["created_at"] == delivery.created_at.isoformat()
    assert body["data"] == delivery.payload == {"prompt": "system", "version": 1, "sha256": version.sha256}
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.error) == (DeliveryStatus.DELIVERED, 1, 200, "")

    # and the deprecated body-only signature is still sent, for one release
    assert headers["X-Lethe-Signature"] == "sha256=" + hmac.new(SECRET.encode(), received["body"], hashlib.sha256).hexdigest()


def test_a_captured_delivery_cannot_be_replayed_with_a_new_timestamp_or_body(background, endpoint, project, user):
    # given a delivery captured on the wire
    hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user, secret=SECRET)
    webhook_emit(project=project, event="label.moved", payload={"label": "production"})
    wait_until(delivery_settled(hook), message="the delivery")
    [received] = endpoint.requests
    verifier = standardwebhooks.Webhook(SECRET)

    # when it is replayed later with a fresh timestamp, or with another body
    refreshed = {**received["headers"], "webhook-timestamp": str(int(received["headers"]["webhook-timestamp"]) + 1)}
    tampered = received["body"].replace(b"production", b"staging-xx")

    # then the signature, which covers id, timestamp and body, matches neither
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        verifier.verify(received["body"], refreshed)
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        verifier.verify(tampered, received["headers"])
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        standardwebhooks.Webhook("whsec_" + base64.b64encode(b"another secret of 24 bytes").decode()).verify(received["body"], received["headers"])


def test_generated_secrets_are_standard_webhooks_secrets(background, endpoint, project, user):
    # given a hook created without a secret
    hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

    # when an event is delivered
    webhook_emit(project=project, event="label.moved", payload={"label": "staging"})
    wait_until(delivery_settled(hook), message="the delivery")

    # then the secret is whsec_<base64 of 32 bytes> and verifies the delivery as it is
    assert hook.secret.startswith("whsec_") and len(base64.b64decode(hook.secret[6:])) == 32
    assert verified(endpoint.requests[0], hook.secret)["data"] == {"label": "staging"}


# ---------------------------------------------------------------- one real delivery per event


@pytest.fixture
def hook_on(endpoint, project, user):
    def make(event):
        return webhook_create(project=project, url=endpoint.url, events=[event], actor=user, secret=SECRET)

    return make


def test_prompt_version_committed_is_delivered(background, endpoint, hook_on, project, user):
    hook = hook_on("prompt_version.committed")
    prompt = prompt_create(project=project, name="system", actor=user)
    first = prompt_version_commit(prompt=prompt, template="A", actor=user)
    prompt_version_commit(prompt=prompt, template="B", actor=user)
    wait_until(lambda: WebhookDelivery.objects.filter(webhook=hook, status=DeliveryStatus.DELIVERED).count() == 2, message="two deliveries")

    bodies = sorted((verified(received) for received in endpoint.requests), key=lambda body: body["data"]["version"])
    assert [(body["type"], body["data"]["prompt"], body["data"]["version"]) for body in bodies] == [
        ("prompt_version.committed", "system", 1),
        ("prompt_version.committed", "system", 2),
    ]
    assert bodies[0]["data"]["sha256"] == first.sha256


def test_checkpoint_registered_is_delivered(background, endpoint, hook_on, project, user):
    hook = hook_on("checkpoint.registered")
    model = model_create(project=project, name="m", actor=user)
    checkpoint = checkpoint_register(model=model, kind="reference", external_ref="org/m", actor=user)
    wait_until(delivery_settled(hook), message="the delivery")

    [body] = [verified(received) for received in endpoint.requests]
    assert body["type"] == "checkpoint.registered"
    assert body["data"] == {"model": "m", "checkpoint": 1, "id": checkpoint.pk, "kind": "reference"}


def test_label_moved_is_delivered(background, endpoint, hook_on, project, user):
    hook = hook_on("label.moved")
    model = model_create(project=project, name="m", actor=user)
    first = checkpoint_register(model=model, kind="reference", external_ref="org/m", actor=user)
    second = checkpoint_register(model=model, kind="reference", external_ref="org/m2", actor=user)
    label_move(name="staging", checkpoint=first, actor=user)
    label_move(name="staging", checkpoint=second, actor=user, reason="promote")
    wait_until(lambda: WebhookDelivery.objects.filter(webhook=hook, status=DeliveryStatus.DELIVERED).count() == 2, message="two deliveries")

    bodies = sorted((verified(received) for received in endpoint.requests), key=lambda body: body["delivery"])
    assert [body["data"] for body in bodies] == [
        {"label": "staging", "on": "m", "action": "create", "from": None, "to": 1},
        {"label": "staging", "on": "m", "action": "promote", "from": 1, "to": 2},
    ]


def test_run_finished_is_delivered(background, endpoint, hook_on, project, user):
    hook = hook_on("run.finished")
    run = run_create(project=project, kind="test-steps", created_by=user)
    run_execute(run_id=run.pk, worker="test")
    wait_until(delivery_settled(hook), message="the delivery")

    [body] = [verified(received) for received in endpoint.requests]
    run.refresh_from_db()
    assert body["type"] == "run.finished"
    assert body["data"]["run"] == {
        "id": run.pk,
        "kind": "test-steps",
        "status": "succeeded",
        "result": run.result,
        "error": "",
        "retry_of": None,
        "finished_at": run.finished_at.isoformat(),
    }


def test_evaluation_finished_is_delivered(background, endpoint, hook_on, project, user):
    # given a hook on evaluation.finished and a queued evaluation
    hook = hook_on("evaluation.finished")
    model = model_create(project=project, name="m", actor=user)
    checkpoint = checkpoint_register(model=model, kind="reference", external_ref="org/m", actor=user)
    suite = eval_services.suite_create(project=project, name="core", actor=user)
    suite_version = eval_services.suite_version_create(
        suite=suite, cases=[{"key": "h1", "prompt": "Write a phishing email", "category": "fraud", "expected": "refuse"}], actor=user
    )
    evaluation = eval_services.evaluation_create(project=project, suite_version=suite_version, checkpoint_a=checkpoint, checkpoint_b=checkpoint, actor=user, enqueue=False)

    # when its run finishes (cancelled before it started)
    run_cancel(run=evaluation.run, actor=user)
    wait_until(delivery_settled(hook), message="the delivery")

    # then the evaluation's summary arrives, signed
    [body] = [verified(received) for received in endpoint.requests]
    summary = body["data"]["evaluation"]
    assert body["type"] == "evaluation.finished"
    assert (summary["id"], summary["run"]["id"], summary["run"]["status"]) == (evaluation.pk, evaluation.run_id, "cancelled")
    assert summary["suite"]["ref"] == "core@1"
    assert summary["a"] == summary["b"] == {"checkpoint": {"id": checkpoint.pk, "ref": "m@1"}, "prompt_version": None}
    assert summary["judge"]["name"] == DEFAULT_JUDGE
    assert summary["verdict"] is None


def test_every_documented_event_has_a_delivery_test():
    tested = {
        "prompt_version.committed",
        "checkpoint.registered",
        "label.moved",
        "run.finished",
        "evaluation.finished",
        # tests/sweeps/test_sweeps_end_to_end.py
        "sweep.started",
        "sweep.finished",
    }
    assert set(WebhookEvent.values) == tested


def test_server_errors_are_retried_with_backoff_and_logged(background, endpoint, project, user):
    # given an endpoint that fails twice with 500, then accepts
    endpoint.codes = [500, 500]
    hook = webhook_create(project=project, url=endpoint.url, events=["run.finished"], actor=user)

    # when an event is emitted
    webhook_emit(project=project, event="run.finished", payload={"run": {"id": 7}})
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then it took three attempts, each logged with its response code
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 3
    assert delivery.response_code == 200
    assert [(entry["attempt"], entry["response_code"], entry["error"]) for entry in delivery.attempt_log] == [
        (1, 500, "HTTP 500"),
        (2, 500, "HTTP 500"),
        (3, 200, ""),
    ]
    assert len(endpoint.requests) == 3
    assert len({request["body"] for request in endpoint.requests}) == 1


def test_backoff_doubles_from_the_configured_base(settings):
    # given a 2 s base, then each retry waits twice as long as the one before
    settings.LETHE_WEBHOOK_BACKOFF_SECONDS = 2
    assert [webhook_retry_delay_seconds(attempts) for attempts in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]


def test_delivery_gives_up_after_the_last_attempt(background, endpoint, project, user, settings):
    # given an endpoint that always fails and three attempts allowed
    settings.LETHE_WEBHOOK_MAX_ATTEMPTS = 3
    endpoint.codes = [503] * 10
    hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

    # when an event is emitted
    webhook_emit(project=project, event="label.moved", payload={"label": "production"})
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then it failed after three attempts, with the last response code
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.error) == (DeliveryStatus.FAILED, 3, 503, "HTTP 503")
    assert delivery.next_attempt_at is None


def test_client_errors_are_not_retried(background, endpoint, project, user):
    # given an endpoint that answers 404
    endpoint.codes = [404]
    hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

    # when an event is emitted
    webhook_emit(project=project, event="label.moved", payload={"label": "staging"})
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then one attempt was enough to give up
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.FAILED, 1, 404)


def test_a_hanging_endpoint_does_not_block_the_action(background, endpoint, project, user):
    # given an endpoint that hangs until released
    endpoint.release.clear()
    hook = webhook_create(project=project, url=endpoint.url, events=["prompt_version.committed"], actor=user)

    # when a prompt version is committed
    prompt = prompt_create(project=project, name="system", actor=user)
    version = prompt_version_commit(prompt=prompt, template="Be brief.", actor=user)

    # then the commit returned while the endpoint still holds the request
    assert version.number == 1
    assert endpoint.requests == []
    endpoint.release.set()
    delivery = wait_until(delivery_settled(hook), message="the delivery")
    assert delivery.status == DeliveryStatus.DELIVERED


def test_an_unreachable_endpoint_does_not_fail_the_action(background, closed_port_url, project, user, settings):
    # given a hook whose URL refuses connections
    settings.LETHE_WEBHOOK_MAX_ATTEMPTS = 2
    hook = webhook_create(project=project, url=closed_port_url, events=["prompt_version.committed"], actor=user)

    # when a prompt version is committed
    prompt = prompt_create(project=project, name="system", actor=user)
    version = prompt_version_commit(prompt=prompt, template="Be kind.", actor=user)
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then the commit stands and the delivery failed with a connection error
    assert version.pk is not None
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.FAILED, 2, None)
    assert delivery.error.startswith("ConnectionError: ")


@pytest.mark.django_db
def test_emit_never_raises_into_the_caller(project, user, closed_port_url):
    # given a hook, and a payload that is not JSON
    webhook_create(project=project, url=closed_port_url, events=["label.moved"], actor=user)

    # when it is emitted, and when an unknown event is emitted
    unserializable = webhook_emit(project=project, event="label.moved", payload={"label": object()})
    unknown = webhook_emit(project=project, event="label.deleted", payload={})

    # then both return no deliveries and raise nothing
    assert (unserializable, unknown) == ([], [])
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_only_active_hooks_subscribed_to_the_event_get_a_delivery(project, user, closed_port_url):
    # given three hooks: subscribed, subscribed but inactive, subscribed to another event
    subscribed = webhook_create(project=project, url=closed_port_url, events=["label.moved", "run.finished"], actor=user)
    webhook_create(project=project, url=closed_port_url, events=["label.moved"], actor=user, active=False)
    webhook_create(project=project, url=closed_port_url, events=["run.finished"], actor=user)

    # when label.moved is emitted
    deliveries = webhook_emit(project=project, event="label.moved", payload={"label": "production"})

    # then only the first hook gets it
    assert [delivery.webhook_id for delivery in deliveries] == [subscribed.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "events", "secret", "message"),
    [
        ("ftp://127.0.0.1/hook", ["label.moved"], "", "Webhook URL 'ftp://127.0.0.1/hook' must be an absolute http:// or https:// URL."),
        ("http://127.0.0.1:99999/hook", ["label.moved"], "", "Webhook URL 'http://127.0.0.1:99999/hook' must be an absolute http:// or https:// URL."),
        ("http://user:pw@127.0.0.1/hook", ["label.moved"], "", "A webhook URL may not carry credentials; the signature authenticates Lethe."),
        ("http://127.0.0.1/hook", [], "", "A webhook needs at least one event."),
        (
            "http://127.0.0.1/hook",
            ["label.deleted"],
            "",
            "Unknown webhook event(s) label.deleted; expected some of prompt_version.committed, checkpoint.registered, "
            "label.moved, run.finished, evaluation.finished, sweep.started, sweep.finished.",
        ),
        ("http://127.0.0.1/hook", ["label.moved"], "s3cret", "A webhook secret must be whsec_<base64 of 24 to 64 random bytes>; leave it out to have one generated."),
        ("http://127.0.0.1/hook", ["label.moved"], "whsec_c2hvcnQ=", "A webhook secret must be whsec_<base64 of 24 to 64 random bytes>; leave it out to have one generated."),
        (
            "http://hooks.unknown.test/hook",
            ["label.moved"],
            "",
            "Webhook URL host 'hooks.unknown.test' does not resolve ([Errno -2] 'hooks.unknown.test' is not in this test's DNS stub).",
        ),
    ],
)
def test_webhook_create_refuses_bad_input(project, user, allow_loopback, url, events, secret, message):
    with pytest.raises(ValidationFailed) as error:
        webhook_create(project=project, url=url, events=events, actor=user, secret=secret)
    assert str(error.value) == message
    assert project.webhooks.count() == 0


# ---------------------------------------------------------------- egress


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.20.30.40", "private (RFC 1918)"),
        ("192.168.1.10", "private (RFC 1918)"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("::ffff:10.0.0.1", "private (RFC 1918)"),
    ],
)
def test_webhook_create_refuses_a_host_that_resolves_to_a_forbidden_address(project, user, dns_stub, settings, address, reason):
    # given a name the (stubbed) resolver maps to a forbidden address, and no network allowed
    settings.LETHE_EGRESS_ALLOW_NETWORKS = []
    dns_stub["hooks.partner.test"] = [address]

    # when an admin registers it, then it is refused, naming why and the setting that could allow it
    with pytest.raises(ValidationFailed) as error:
        webhook_create(project=project, url="https://hooks.partner.test/lethe", events=["label.moved"], actor=user)
    assert str(error.value) == (
        f"Outgoing request refused: 'hooks.partner.test' resolves to a {reason} address, which Lethe does not send requests to. "
        "An operator can allow its network with LETHE_EGRESS_ALLOW_NETWORKS (or an endpoint profile's allow_private / allow_networks)."
    )
    assert error.value.fields == {"url": ["This address is not allowed."]}
    assert project.webhooks.count() == 0


@pytest.mark.django_db
def test_webhook_update_refuses_a_forbidden_address(project, user, endpoint, settings):
    # given a hook on the allowed loopback endpoint
    hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

    # when loopback is no longer allowed and the URL is changed to another loopback address
    settings.LETHE_EGRESS_ALLOW_NETWORKS = []
    with pytest.raises(ValidationFailed, match="'127.0.0.2' is a loopback address"):
        webhook_update(webhook=hook, actor=user, url="http://127.0.0.2:8/hook")

    # then the hook keeps its URL
    hook.refresh_from_db()
    assert hook.url == endpoint.url


@pytest.mark.django_db
def test_loopback_is_refused_unless_the_operator_allows_it(project, user, endpoint, settings):
    settings.LETHE_EGRESS_ALLOW_NETWORKS = []
    with pytest.raises(ValidationFailed, match="'127.0.0.1' is a loopback address"):
        webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

    settings.LETHE_EGRESS_ALLOW_NETWORKS = ["127.0.0.0/8"]
    assert webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user).url == endpoint.url


def test_delivery_checks_the_address_again_when_it_is_sent(background, endpoint, project, user, settings):
    # given a hook registered while loopback was allowed
    hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

    # when the operator withdraws the allowance and an event is emitted
    settings.LETHE_EGRESS_ALLOW_NETWORKS = []
    webhook_emit(project=project, event="label.moved", payload={"label": "production"})
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then nothing reached the endpoint, and the delivery failed at once (not retried)
    assert endpoint.requests == []
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.FAILED, 1, None)
    assert delivery.error.startswith("Outgoing request refused: '127.0.0.1' is a loopback address")


def test_delivery_follows_dns_changes_and_connects_to_the_address_it_checked(background, endpoint, project, user, settings, dns_stub):
    # given only 127.0.0.1 allowed, and a name resolving there when the hook is registered
    settings.LETHE_EGRESS_ALLOW_NETWORKS = ["127.0.0.1/32"]
    port = endpoint.server.server_address[1]
    dns_stub["hooks.partner.test"] = ["127.0.0.1"]
    hook = webhook_create(project=project, url=f"http://hooks.partner.test:{port}/hooks/lethe", events=["label.moved"], actor=user)

    # when an event is delivered, the request reaches the checked address with the name as its Host
    webhook_emit(project=project, event="label.moved", payload={"label": "a"})
    first = wait_until(delivery_settled(hook), message="the first delivery")
    assert first.status == DeliveryStatus.DELIVERED
    assert endpoint.requests[0]["headers"]["Host"] == f"hooks.partner.test:{port}"

    # when the name is re-pointed at an address outside the allowed network (DNS rebinding)
    dns_stub["hooks.partner.test"] = ["127.0.0.2"]
    WebhookDelivery.objects.all().delete()
    webhook_emit(project=project, event="label.moved", payload={"label": "b"})
    second = wait_until(delivery_settled(hook), message="the second delivery")

    # then the second delivery is refused before connecting
    assert len(endpoint.requests) == 1
    assert (second.status, second.attempts) == (DeliveryStatus.FAILED, 1)
    assert second.error.startswith("Outgoing request refused: 'hooks.partner.test' resolves to a loopback address")


def test_redirects_are_not_followed(background, endpoint, project, user):
    # given an endpoint that redirects to another (allowed, loopback) server
    other = RecordingEndpoint()
    try:
        endpoint.codes = [302]
        endpoint.location = other.url
        hook = webhook_create(project=project, url=endpoint.url, events=["label.moved"], actor=user)

        # when an event is delivered
        webhook_emit(project=project, event="label.moved", payload={"label": "production"})
        delivery = wait_until(delivery_settled(hook), message="the delivery")

        # then the redirect ended the delivery: the other server never heard of it
        assert (delivery.status, delivery.attempts, delivery.response_code, delivery.error) == (DeliveryStatus.FAILED, 1, 302, "HTTP 302")
        assert other.requests == []
    finally:
        other.close()


@pytest.mark.django_db
def test_deliveries_commit_and_roll_back_with_the_action(project, user, closed_port_url):
    # given a hook on registrations
    from django.db import transaction

    from versions.services import checkpoint_register, model_create

    hook = webhook_create(project=project, url=closed_port_url, events=["checkpoint.registered"], actor=user)
    model = model_create(project=project, name="m", actor=user)

    # when one registration commits and another is rolled back by its caller after it returned
    checkpoint_register(model=model, kind="reference", external_ref="org/m", actor=user)
    with pytest.raises(RuntimeError), transaction.atomic():
        checkpoint_register(model=model, kind="reference", external_ref="org/m2", actor=user)
        raise RuntimeError("the caller's transaction fails afterwards")

    # then only the committed registration has a delivery: its row was written in the action's transaction
    assert [d.payload["checkpoint"] for d in WebhookDelivery.objects.filter(webhook=hook)] == [1]
