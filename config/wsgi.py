import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Pick up runs left queued by a stopped process as soon as the server starts (embedded executor).
from jobs.executors import executor_start_for_server  # noqa: E402

executor_start_for_server()
