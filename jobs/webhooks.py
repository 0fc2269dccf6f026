"""Webhooks: a project registers URLs for events; each delivery is a JSON POST signed per the
Standard Webhooks specification (https://www.standardwebhooks.com: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, so
a captured delivery cannot be replayed outside the receiver's timestamp tolerance), retried with
exponential backoff and logged with its response code. The old ``X-Lethe-Signature`` (HMAC of the
body alone) is still sent for one release.

Targets go through the egress rules (``core.egress``): a URL whose host is or resolves to a
loopback, private, link-local or metadata address is refused when the hook is created or
changed, and again at every delivery (DNS can change), where the connection goes to the address
that was checked.

Other apps call ``webhook_emit(project=..., event=..., payload=...)`` inside their own
transaction. It only writes delivery rows (in a savepoint) and schedules sending on commit, on
a background dispatcher in this process; it never raises, so a failing endpoint (or a broken
hook) never blocks or fails the action that triggered it. Deliveries whose process died are
picked up again by the dispatcher's periodic sweep of due rows in the database.

Settings (all optional): LETHE_WEBHOOK_TIMEOUT_SECONDS (5), LETHE_WEBHOOK_MAX_ATTEMPTS (5),
LETHE_WEBHOOK_BACKOFF_SECONDS (2: first retry after 2 s, then 4, 8, ...),
LETHE_WEBHOOK_SWEEP_SECONDS (30), LETHE_WEBHOOK_SENDERS (2 threads).
"""

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from urllib.parse import urlsplit

import requests
import standardwebhooks
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from jobs.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from jobs.sql import active_hook_events
from core.egress import EgressRefused, EgressSession, egress_policy
from core.errors import ValidationFailed

logger = logging.getLogger(__name__)

# Standard Webhooks headers.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
# Lethe's own headers; X-Lethe-Signature is deprecated, sent for one more release.
SIGNATURE_HEADER = "X-Lethe-Signature"
EVENT_HEADER = "X-Lethe-Event"
DELIVERY_HEADER = "X-Lethe-Delivery"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ATTEMPT_ERROR_MAX_CHARS = 1000


def webhook_secret_generate() -> str:
    """A new ``whsec_<base64 of 32 random bytes>`` secret, the Standard Webhooks form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _validate_secret(secret):
    message = f"A webhook secret must be {SECRET_PREFIX}<base64 of 24 to 64 random bytes>; leave it out to have one generated."
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValidationFailed(message, fields={"secret": ["Expected whsec_<base64>."]})
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(message, fields={"secret": ["Not base64."]}) from None
    if not 24 <= len(key) <= 64:
        raise ValidationFailed(message, fields={"secret": [f"Decodes to {len(key)} bytes."]})


def _signer(secret: str) -> standardwebhooks.Webhook:
    # Secrets from before Standard Webhooks (hex, or whatever an admin chose) are used as their
    # UTF-8 bytes: receivers verify with Webhook(secret.encode()), new secrets with Webhook(secret).
    return standardwebhooks.Webhook(secret if secret.startswith(SECRET_PREFIX) else secret.encode())


def webhook_signature(*, secret: str, body: bytes) -> str:
    """The deprecated X-Lethe-Signature: ``sha256=<hex HMAC-SHA256 of the body with the secret>``
    (no timestamp, so replayable; kept one release for receivers that still check it)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_standard_signature(*, secret: str, msg_id: str, timestamp: datetime, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of "msg_id.timestamp.body">``."""
    return _signer(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body.decode())


def webhook_delivery_headers(*, delivery, body: bytes, now: datetime) -> dict:
    """The headers of one attempt: signed at the attempt's own time, so retries carry a fresh
    timestamp while ``webhook-id`` stays the delivery's."""
    msg_id = str(delivery.pk)
    now = now.astimezone(dt_timezone.utc)
    return {
        "Content-Type": "application/json",
        "User-Agent": "Lethe-Webhooks/2",
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(now.timestamp())),
        STANDARD_SIGNATURE_HEADER: webhook_standard_signature(secret=delivery.webhook.secret, msg_id=msg_id, timestamp=now, body=body),
        SIGNATURE_HEADER: webhook_signature(secret=delivery.webhook.secret, body=body),
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: msg_id,
    }


def _validate_url(url):
    """An absolute http(s) URL whose host the egress rules let deliveries reach (resolved now;
    every delivery checks again)."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValidationFailed(f"Webhook URL {url!r} must be an absolute http:// or https:// URL.", fields={"url": ["Enter an http(s) URL."]})
    if parts.username or parts.password:
        raise ValidationFailed("A webhook URL may not carry credentials; the signature authenticates Lethe.", fields={"url": ["Remove user:password@."]})
    try:
        egress_policy().check(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    except EgressRefused as exc:
        raise ValidationFailed(str(exc), fields={"url": ["This address is not allowed."]}) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationFailed(f"Webhook URL host {parts.hostname!r} does not resolve ({exc}).", fields={"url": ["The host does not resolve."]}) from None


def _validate_events(events):
    if not isinstance(events, (list, tuple)) or not events:
        raise ValidationFailed("A webhook needs at least one event.", fields={"events": ["Give a non-empty list of events."]})
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown:
        raise ValidationFailed(
            f"Unknown webhook event(s) {', '.join(unknown)}; expected some of {', '.join(WebhookEvent.values)}.",
            fields={"events": [f"Unknown event {name!r}." for name in unknown]},
        )
    return sorted(set(events))


def _audit(*, webhook, actor, action, data=None):
    from versions.services import audit_record

    audit_record(project=webhook.project, actor=actor, action=action, object_type="webhook", object_id=str(webhook.pk), data=data or {})


def webhook_create(*, project, url, events, actor, secret="", active=True) -> Webhook:
    """Register a hook; a random ``whsec_`` secret is generated when none is given. The URL's
    host is resolved and checked before the transaction opens (no lock is held over DNS)."""
    events = _validate_events(events)
    if secret:
        _validate_secret(secret)
    _validate_url(url)
    with transaction.atomic():
        webhook = Webhook.objects.create(project=project, url=url, events=events, secret=secret or webhook_secret_generate(), active=active, created_by=actor)
        _audit(webhook=webhook, actor=actor, action="webhook.create", data={"url": url, "events": webhook.events})
    return webhook


def webhook_update(*, webhook, actor, url=None, events=None, active=None) -> Webhook:
    changed = {}
    if url is not None:
        _validate_url(url)  # before the transaction, like webhook_create
        changed["url"] = url
    if events is not None:
        changed["events"] = _validate_events(events)
    if active is not None:
        changed["active"] = bool(active)
    if changed:
        with transaction.atomic():
            for name, value in changed.items():
                setattr(webhook, name, value)
            webhook.save(update_fields=list(changed))
            _audit(webhook=webhook, actor=actor, action="webhook.update", data=changed)
    return webhook


@transaction.atomic
def webhook_delete(*, webhook, actor) -> None:
    _audit(webhook=webhook, actor=actor, action="webhook.delete", data={"url": webhook.url})
    webhook.delete()


def webhook_emit_for_registry_event(sender, *, project, event, payload, **kwargs) -> None:
    """Receiver of ``versions.events.registry_event``, connected in ``JobsConfig.ready``."""
    webhook_emit(project=project, event=event, payload=payload)


def webhook_emit(*, project, event, payload) -> list[WebhookDelivery]:
    """Record one delivery per active hook of the project subscribed to ``event`` and send them
    after the surrounding transaction commits. Never raises; returns the deliveries created."""
    try:
        if event not in WebhookEvent.values:
            raise ValueError(f"unknown webhook event {event!r}")
        # Hooks per project are few: the event filter runs in Python, the same on every database.
        hook_ids = [pk for pk, events in active_hook_events(project_id=project.pk) if event in events]
        if not hook_ids:
            return []
        data = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
        with transaction.atomic():  # a savepoint: a failure here leaves the caller's transaction usable
            now = timezone.now()
            deliveries = WebhookDelivery.objects.bulk_create([WebhookDelivery(webhook_id=pk, event=event, payload=data, next_attempt_at=now) for pk in hook_ids])
        ids = [delivery.pk for delivery in deliveries]  # set by bulk_create on SQLite and PostgreSQL
        transaction.on_commit(lambda: _schedule_quietly(ids))
        return deliveries
    except Exception:
        logger.exception("webhook_emit(%s) for project %s failed; the action goes on without it", event, getattr(project, "pk", project))
        return []


def _schedule_quietly(ids):
    try:
        dispatcher = webhook_dispatcher()
        for pk in ids:
            dispatcher.schedule(pk)
    except Exception:
        logger.exception("scheduling webhook deliveries %s failed; the periodic sweep will send them", ids)


def webhook_delivery_body(delivery) -> bytes:
    """The exact bytes POSTed (and signed) for a delivery: the Standard Webhooks payload
    (``type``, ``timestamp``, ``data``) plus Lethe's ``delivery``, ``event``, ``project`` and
    ``created_at``. The same bytes on every attempt."""
    created_at = delivery.created_at.isoformat()
    body = {
        "type": delivery.event,
        "timestamp": created_at,
        "delivery": delivery.pk,
        "event": delivery.event,
        "project": delivery.webhook.project.slug,
        "created_at": created_at,
        "data": delivery.payload,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def webhook_retry_delay_seconds(attempts) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: the base, doubling each time."""
    return settings.LETHE_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1)


def _is_retryable(response_code) -> bool:
    # Network errors, timeouts, 5xx and "slow down" answers may pass later; other 4xx will not.
    return response_code is None or response_code >= 500 or response_code in (408, 429)


def webhook_delivery_attempt(*, delivery_id) -> WebhookDelivery | None:
    """Send one attempt of a due pending delivery and record its outcome.

    Returns the delivery as it stands afterwards, or None when it was not due (already sent,
    given up, or leased by another sender).
    """
    timeout = settings.LETHE_WEBHOOK_TIMEOUT_SECONDS
    now = timezone.now()
    leased = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now).update(next_attempt_at=now + timedelta(seconds=timeout + 30))
    if not leased:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook__project").get(pk=delivery_id)
    body = webhook_delivery_body(delivery)
    headers = webhook_delivery_headers(delivery=delivery, body=body, now=timezone.now())
    response_code, error, refused = None, "", False
    try:
        # The host is checked again now, on the connection itself: DNS may have changed since
        # the hook was registered. Redirects are never followed (a 3xx is a failed attempt).
        with EgressSession(egress_policy(), pool_maxsize=1) as session:
            response = session.post(delivery.webhook.url, data=body, headers=headers, timeout=timeout)
            response.close()
        response_code = response.status_code
        if not 200 <= response_code < 300:
            error = f"HTTP {response_code}"
    except EgressRefused as exc:
        error, refused = str(exc)[:ATTEMPT_ERROR_MAX_CHARS], True
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:ATTEMPT_ERROR_MAX_CHARS]

    finished_at = timezone.now()
    attempts = delivery.attempts + 1
    fields = {
        "attempts": attempts,
        "response_code": response_code,
        "error": error,
        "attempt_log": delivery.attempt_log + [{"attempt": attempts, "at": finished_at.isoformat(), "response_code": response_code, "error": error}],
    }
    if not error:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=finished_at, next_attempt_at=None)
    elif refused or attempts >= settings.LETHE_WEBHOOK_MAX_ATTEMPTS or not _is_retryable(response_code):
        fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        fields.update(next_attempt_at=finished_at + timedelta(seconds=webhook_retry_delay_seconds(attempts)))
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    delivery.refresh_from_db()
    return delivery


def webhook_deliveries_due() -> list[int]:
    return list(WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()).order_by("next_attempt_at").values_list("pk", flat=True))


class WebhookDispatcher:
    """Sends deliveries on a few threads at the time they are due.

    A scheduler thread keeps a heap of (due time, delivery id) for this process's deliveries
    and retries, and every sweep interval also looks in the database for due rows that no
    process has in memory (its process stopped before sending).
    """

    def __init__(self, *, senders, sweep_seconds):
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="lethe-webhook")
        self._due = []
        self._condition = threading.Condition()
        self._stopped = False
        self._sweep_seconds = sweep_seconds
        self._thread = threading.Thread(target=self._schedule_loop, name="lethe-webhook-scheduler", daemon=True)

    def start(self):
        self._thread.start()

    def schedule(self, delivery_id, at=None):
        due = time.time() if at is None else at.timestamp()
        with self._condition:
            heapq.heappush(self._due, (due, delivery_id))
            self._condition.notify()

    def shutdown(self, *, wait=True):
        with self._condition:
            self._stopped = True
            self._condition.notify()
        if wait:
            self._thread.join()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def _schedule_loop(self):
        next_sweep = time.monotonic()
        while True:
            with self._condition:
                while True:
                    if self._stopped:
                        return
                    sweep = time.monotonic() >= next_sweep
                    ready = []
                    while self._due and self._due[0][0] <= time.time():
                        ready.append(heapq.heappop(self._due)[1])
                    if ready or sweep:
                        break
                    wait = next_sweep - time.monotonic()
                    if self._due:
                        wait = min(wait, self._due[0][0] - time.time())
                    self._condition.wait(max(wait, 0.0))
            try:
                for delivery_id in dict.fromkeys(ready):
                    self._pool.submit(self._send, delivery_id)
                if sweep:
                    next_sweep = time.monotonic() + self._sweep_seconds
                    self._pool.submit(self._sweep)
            except RuntimeError:
                # The interpreter is exiting (a management command ended) and shut the pool down:
                # what was not sent stays pending in the database for the next process's sweep.
                return

    def _send(self, delivery_id):
        close_old_connections()
        try:
            delivery = webhook_delivery_attempt(delivery_id=delivery_id)
            if delivery is not None and delivery.status == DeliveryStatus.PENDING:
                self.schedule(delivery_id, delivery.next_attempt_at)
        except Exception:
            logger.exception("webhook delivery %s: attempt failed unexpectedly; the sweep will retry it", delivery_id)
        finally:
            connection.close()

    def _sweep(self):
        close_old_connections()
        try:
            for delivery_id in webhook_deliveries_due():
                self.schedule(delivery_id)
        except Exception:
            logger.exception("sweeping due webhook deliveries failed")
        finally:
            connection.close()


_dispatcher: WebhookDispatcher | None = None
_dispatcher_lock = threading.Lock()


def webhook_dispatcher() -> WebhookDispatcher:
    """This process's dispatcher, started on first use."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            dispatcher = WebhookDispatcher(senders=settings.LETHE_WEBHOOK_SENDERS, sweep_seconds=settings.LETHE_WEBHOOK_SWEEP_SECONDS)
            dispatcher.start()
            _dispatcher = dispatcher
        return _dispatcher


def webhook_dispatcher_shutdown(*, wait=True) -> None:
    global _dispatcher
    with _dispatcher_lock:
        dispatcher, _dispatcher = _dispatcher, None
    if dispatcher is not None:
        dispatcher.shutdown(wait=wait)
