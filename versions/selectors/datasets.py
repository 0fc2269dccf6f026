"""Datasets, their versions and rows."""

import json


from core.errors import NotFound
from versions.models import Dataset, DatasetVersion


def dataset_version_rows(*, dataset_version):
    from versions.blob_store import blob_read_bytes

    content = blob_read_bytes(dataset_version.blob).decode("utf-8")
    return [json.loads(line) for line in content.splitlines() if line]


def datasets_for_project(*, project):
    return Dataset.objects.filter(project=project).select_related("created_by").order_by("name")


def dataset_get(*, project, name):
    dataset = Dataset.objects.filter(project=project, name=name).select_related("project", "created_by").first()
    if dataset is None:
        raise NotFound(f"Dataset {name!r} not found in {project.slug}.")
    return dataset


def dataset_versions(*, dataset):
    return DatasetVersion.objects.filter(dataset=dataset).select_related("created_by").order_by("-number")


def dataset_version_get(*, dataset, number):
    version = DatasetVersion.objects.filter(dataset=dataset, number=number).select_related("created_by", "blob").first()
    if version is None:
        raise NotFound(f"Dataset {dataset.name} has no version {number}.")
    return version


def dataset_versions_by_sha256(*, project, sha256s):
    """{sha256: [dataset versions of the project with that content, by dataset name and number]}
    in one query: lineage edges record what a checkpoint forgot by content hash."""
    found = {}
    wanted = {sha for sha in sha256s if sha}
    if not wanted:
        return found
    versions = DatasetVersion.objects.filter(dataset__project=project, sha256__in=wanted).select_related("dataset").order_by("dataset__name", "number")
    for version in versions:
        found.setdefault(version.sha256, []).append(version)
    return found
