"""Static files that come from installed packages rather than from an app's static/ folder."""
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage


class PlotlyFinder(BaseFinder):
    """plotly.js as ``vendor/plotly/plotly.min.js``: the copy inside the pinned plotly package, so
    the Python figures and the JS always match. Only that file: the package's folder also holds a
    widget bundle and sample datasets that collectstatic would otherwise hash and compress."""

    prefix = "vendor/plotly"
    name = "plotly.min.js"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory = Path(plotly.__file__).parent / "package_data"
        self.storage = FileSystemStorage(location=str(self.directory))
        self.storage.prefix = self.prefix

    def check(self, **kwargs):
        if not (self.directory / self.name).is_file():
            return [Error(f"{self.directory / self.name} is missing: reinstall the plotly package.", id="lethe.E001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != f"{self.prefix}/{self.name}":
            return []  # as Django's finders answer "not here" (None would count as a match)
        match = str(self.directory / self.name)
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield self.name, self.storage
