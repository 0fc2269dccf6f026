import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

# Pick up runs left queued by a stopped process as soon as the server starts (embedded executor).
from jobs.executors import executor_start_for_server  # noqa: E402

executor_start_for_server()
