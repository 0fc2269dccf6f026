"""Every Kubernetes workload that reads or writes blobs mounts the shared artifacts volume in the
shared-volume set-up (platform/k8s), and the object-store overlay (platform/k8s/objectstore)
takes every such mount out: web, GPU workers, the reaper (``runs reap`` also deletes
unreferenced blobs) and the blob scrub (``blobs verify``). The overlay's JSON-patch removals are applied here as kustomize would."""

from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parents[1] / "platform" / "k8s"
ARTIFACTS_MOUNT = {"name": "artifacts", "mountPath": "/var/lib/lethe-artifacts"}
ARTIFACTS_VOLUME = {"name": "artifacts", "persistentVolumeClaim": {"claimName": "lethe-artifacts"}}


def _workloads():
    return [
        document
        for name in ("web.yaml", "worker-gpu.yaml")
        for document in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8"))
        if document["kind"] in ("Deployment", "CronJob")
    ]


def _pod_spec(workload):
    template = workload["spec"]["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else workload["spec"]["template"]
    return template["spec"]


def _remove(document, path):
    *parents, last = path.strip("/").split("/")
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        del node[int(last)]
    else:
        del node[last]


def test_every_workload_mounts_the_shared_artifacts_volume():
    workloads = _workloads()
    assert sorted((w["kind"], w["metadata"]["name"]) for w in workloads) == [
        ("CronJob", "lethe-blob-scrub"),
        ("CronJob", "lethe-reaper"),
        ("Deployment", "lethe-web"),
        ("Deployment", "lethe-worker-gpu"),
    ]
    for workload in workloads:
        spec = _pod_spec(workload)
        assert ARTIFACTS_MOUNT in spec["containers"][0]["volumeMounts"], workload["metadata"]["name"]
        assert ARTIFACTS_VOLUME in spec["volumes"], workload["metadata"]["name"]


def test_the_object_store_overlay_takes_every_artifacts_mount_out_and_keeps_the_rest():
    overlay = yaml.safe_load((K8S / "objectstore" / "kustomization.yaml").read_text(encoding="utf-8"))
    workloads = _workloads()
    for patch in overlay["patches"]:
        (workload,) = [w for w in workloads if (w["kind"], w["metadata"]["name"]) == (patch["target"]["kind"], patch["target"]["name"])]
        for operation in yaml.safe_load(patch["patch"]):
            assert operation["op"] == "remove"
            _remove(workload, operation["path"])
    for workload in workloads:
        spec = _pod_spec(workload)
        assert ARTIFACTS_MOUNT not in spec["containers"][0].get("volumeMounts", []), workload["metadata"]["name"]
        assert ARTIFACTS_VOLUME not in spec.get("volumes", []), workload["metadata"]["name"]
    worker = _pod_spec(next(w for w in workloads if w["metadata"]["name"] == "lethe-worker-gpu"))
    assert worker["containers"][0]["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch/lethe"}]
