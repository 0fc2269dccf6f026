"""Celery application for scale-out execution of runs (see docs/deploy.md).

Workers start with ``celery -A config worker -Q gpu -c 1``. The embedded default executor does
not import Celery's machinery at all at run time; this module only defines the app.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lethe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
