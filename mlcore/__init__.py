"""Lethe's Django-free ML code: model loading, text and vision helpers, generation, typographic
rendering, determinism and the tiny builders. Imports no Django, DRF, Celery or Lethe app."""
