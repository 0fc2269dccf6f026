"""Webhooks against a real HTTP server on 127.0.0.1: signature, retries, delivery log, and
that a failing endpoint never blocks or fails the action that triggered it."""
import hashlib
import hmac
import json

import pytest

from jobs.models import DeliveryStatus, WebhookDelivery
from jobs.webhooks import webhook_create, webhook_emit, webhook_retry_delay_seconds
from tests.jobs.conftest import wait_until
from versions.errors import ValidationFailed
from versions.services import prompt_create, prompt_version_commit


def delivery_settled(hook):
    def settled():
        delivery = WebhookDelivery.objects.filter(webhook=hook).first()
        return delivery if delivery is not None and delivery.status != DeliveryStatus.PENDING else None

    return settled


def test_delivery_is_a_signed_json_post(background, endpoint, project, user):
    # given a hook with a known secret on prompt commits
    hook = webhook_create(project=project, url=endpoint.url, events=["prompt_version.committed"], actor=user, secret="s3cret")

    # when a prompt version is committed
    prompt = prompt_create(project=project, name="system", actor=user)
    version = prompt_version_commit(prompt=prompt, template="You are careful.", actor=user)
    delivery = wait_until(delivery_settled(hook), message="the delivery")

    # then the endpoint got one POST whose signature is the HMAC-SHA256 of the body
    [received] = endpoint.requests
    expected_signature = "sha256=" + hmac.new(b"s3cret", received["body"], hashlib.sha256).hexdigest()
    body = json.loads(received["body"])
    assert received["path"] == "/hooks/lethe"
    assert received["headers"]["X-Lethe-Signature"] == expected_signature
    assert received["headers"]["X-Lethe-Event"] == "prompt_version.committed"
    assert received["headers"]["X-Lethe-Delivery"] == str(delivery.pk)
    assert received["headers"]["Content-Type"] == "application/json"
    assert body["event"] == "prompt_version.committed"
    assert body["delivery"] == delivery.pk
    assert body["project"] == "safety"
    assert body["data"] == delivery.payload
    assert version.number == 1
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.error) == (DeliveryStatus.DELIVERED, 1, 200, "")


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
    ("url", "events", "message"),
    [
        ("ftp://example.org/hook", ["label.moved"], "Webhook URL 'ftp://example.org/hook' must be an absolute http:// or https:// URL."),
        ("https://example.org/hook", [], "A webhook needs at least one event."),
        (
            "https://example.org/hook",
            ["label.deleted"],
            "Unknown webhook event(s) label.deleted; expected some of prompt_version.committed, checkpoint.registered, "
            "label.moved, run.finished, evaluation.finished.",
        ),
    ],
)
def test_webhook_create_refuses_bad_input(project, user, url, events, message):
    with pytest.raises(ValidationFailed) as error:
        webhook_create(project=project, url=url, events=events, actor=user)
    assert str(error.value) == message


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
