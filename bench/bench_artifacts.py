"""A 1 GiB checkpoint through the API: upload and download throughput against a plain copy of the
same bytes measured in the same run, the SHA-256 of those bytes alone (the bound: every byte is
hashed once on the way in, for its content address, and once on the way out, to verify it), the
server's peak memory growth, and the bytes stored when identical files are registered again.

    python bench/bench_artifacts.py [--gib 1.0] [--server gunicorn|runserver] [--repeat 3]

Method: a real server process with its own PostgreSQL database and artifact folder. By default
it is gunicorn with the flags of platform/Dockerfile's CMD (read from it; --workers 2 --threads 4),
bound to 127.0.0.1 and a free port, as deployments run; ``--server runserver`` runs
``manage.py runserver --noreload --nothreading`` instead. The client streams the multipart body
from disk with a Content-Length (a file-like body, never built in memory) and streams the
download to disk with ``iter_content``.

Every figure is the best of ``--repeat`` runs, the baseline as much as the API: on a VM whose
free memory is handed back to the host (virtio-balloon free page reporting), writing 1 GiB into
fresh page cache costs seconds of host page faults, which a run pays or not depending on what was
freed just before it. The first upload stores the files; the repeats register identical files
and must store 0 new bytes. Peak memory is the largest growth of any server process's VmHWM
(kernel high-water mark of its resident set, from /proc) over its resident set after warm-up
requests. Goals (issue 9): growth <= 64 MiB, throughput >= 0.7x a plain copy, re-registering
identical files stores 0 new bytes.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import ROOT, django_setup, server_start, server_wait, write_result  # noqa: E402

CHUNK = 8 * 1024 * 1024
CLIENT_BLOCK = 1024 * 1024  # also the server's chunk (versions.blob_store.CHUNK)


def write_safetensors(path, size):
    """A valid safetensors file of about ``size`` bytes: one F32 tensor of zeros, written in chunks."""
    elements = (size - 256) // 4
    header = json.dumps({"weight": {"dtype": "F32", "shape": [elements], "data_offsets": [0, elements * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    zeros = b"\0" * CHUNK
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)) + header)
        left = elements * 4
        while left:
            out.write(zeros[: min(left, CHUNK)])
            left -= min(left, CHUNK)
    return path


class MultipartBody:
    """A multipart/form-data body read from files on disk as it is sent (requests streams any
    object with read() and __len__ with a Content-Length)."""

    def __init__(self, files, boundary="lethe-bench-boundary"):
        self.boundary = boundary
        self.parts = []
        for name, path in files.items():
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{Path(name).name}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
            self.parts += [("bytes", head), ("file", path), ("bytes", b"\r\n")]
        self.parts.append(("bytes", f"--{boundary}--\r\n".encode()))
        self.length = sum(len(v) if k == "bytes" else os.path.getsize(v) for k, v in self.parts)
        self._current = None

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self):
        return self.length

    def read(self, size=-1):
        size = CHUNK if size is None or size < 0 else size
        while True:
            if self._current is None:
                if not self.parts:
                    return b""
                kind, value = self.parts.pop(0)
                self._current = open(value, "rb") if kind == "file" else _BytesReader(value)
            data = self._current.read(size)
            if data:
                return data
            self._current.close()
            self._current = None


class _BytesReader:
    def __init__(self, data):
        self.data, self.offset = data, 0

    def read(self, size):
        chunk = self.data[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk

    def close(self):
        pass


def client_session():
    """requests with 1 MiB send blocks (urllib3's default is 16 KiB: a Python loop turn per 16 KiB
    of a gigabyte body makes the client, not the server, the thing measured)."""
    import requests
    from requests.adapters import HTTPAdapter

    class LargeBlocks(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, blocksize=CLIENT_BLOCK, **kwargs)

    session = requests.Session()
    session.mount("http://", LargeBlocks())
    return session


def proc_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid):
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def server_pids(pid):
    """The server process and its children (gunicorn's workers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return [pid, *sorted(children)]


def deploy_server_command(port):
    """platform/Dockerfile's CMD (gunicorn and its flags) with --bind on 127.0.0.1:port."""
    line = next(line for line in (ROOT / "platform" / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    argv = json.loads(line[4:])
    assert argv[0] == "gunicorn", argv
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    return [sys.executable, "-m", *argv]


def best_of(repeat, run):
    return min(run() for _ in range(repeat))


def timed_copy(source, destination):
    began = time.perf_counter()
    shutil.copyfile(source, destination)
    elapsed = time.perf_counter() - began
    os.unlink(destination)
    return elapsed


def timed_sha256(path):
    """hashlib over the file in 1 MiB reads, as the server hashes: the single-thread bound."""
    began = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CLIENT_BLOCK):
            digest.update(chunk)
    return time.perf_counter() - began


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_bytes(root):
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--server", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import requests

    client = client_session()

    scratch = Path(tempfile.mkdtemp(prefix="lethe-bench-artifacts-"))
    var = scratch / "var"
    url = django_setup(database="bench_lethe_artifacts", var_dir=var)
    from versions import services

    user = services.user_create(username="bench", password="bench-password")
    project = services.project_create(slug="bench", name="Benchmark", creator=user)
    services.model_create(project=project, name="big", actor=user)
    _, key = services.token_create(user=user, name="bench")
    from django.db import connections

    connections.close_all()

    size = int(args.gib * 1024**3)
    source = scratch / "in"
    source.mkdir()
    weights = write_safetensors(source / "model.safetensors", size)
    (source / "config.json").write_text('{"model_type": "llama"}')
    copy_s = best_of(args.repeat, lambda: timed_copy(weights, scratch / "plain-copy.safetensors"))
    sha256_s = best_of(args.repeat, lambda: timed_sha256(weights))

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "LETHE_VAR_DIR": str(var), "LETHE_DEBUG": "0", "TMPDIR": str(scratch)}
    if args.server == "gunicorn":
        command = deploy_server_command(port)
    else:
        command = [sys.executable, "manage.py", "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"]
    server_line = " ".join(["gunicorn" if args.server == "gunicorn" else "manage.py", *command[3 if args.server == "gunicorn" else 2 :]])
    server = server_start(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(scratch / "server.log", "wb"))
    base = f"http://127.0.0.1:{port}/api/v1/projects/bench/models/big"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        server_wait(f"{base}/checkpoints/", server, f"the server (log: {scratch}/server.log)", headers=headers)
        # Concurrent requests, so that every gunicorn worker has loaded its views before the baseline.
        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                list(pool.map(lambda _: requests.get(f"{base}/checkpoints/", headers=headers, timeout=30).raise_for_status(), range(16)))
        pids = server_pids(server.pid)
        resident = {pid: proc_kib(pid, "VmRSS") for pid in pids}
        peak_reset = all([reset_peak(pid) for pid in pids])
        files = {"model.safetensors": weights, "config.json": source / "config.json"}
        blobs = var / "artifacts" / "blobs"

        def upload():
            body = MultipartBody(files)
            began = time.perf_counter()
            response = client.post(f"{base}/checkpoints/", data=body, headers={**headers, "Content-Type": body.content_type}, timeout=3600)
            elapsed = time.perf_counter() - began
            assert response.status_code == 201, (response.status_code, response.text[:300])
            return response.json()["number"], elapsed

        number, upload_first_s = upload()
        upload_peaks = {pid: proc_kib(pid, "VmHWM") for pid in pids}
        stored_before = tree_bytes(blobs)
        reupload_s = [upload()[1] for _ in range(max(args.repeat - 1, 1))]
        stored_after = tree_bytes(blobs)

        def download():
            downloaded = scratch / "download.tar"
            began = time.perf_counter()
            with client.get(f"{base}/checkpoints/{number}/download/", headers=headers, stream=True, timeout=3600) as response:
                response.raise_for_status()
                with open(downloaded, "wb") as out:
                    for chunk in response.iter_content(CLIENT_BLOCK):
                        out.write(chunk)
            elapsed = time.perf_counter() - began
            download_bytes.append(os.path.getsize(downloaded))
            os.unlink(downloaded)
            return elapsed

        download_bytes = []
        download_s = best_of(args.repeat, download)

        def file_download(*, verify):
            # The weights alone (files/<path>): at least LETHE_ARTIFACT_REDIRECT_BYTES, so the
            # server hands the stored file to gunicorn's sendfile. Timed with and without the
            # client's own sha256 of what it receives (pull_checkpoint's check against Repr-Digest):
            # the first is the server's path, the second what a verifying client pays on one core.
            downloaded = scratch / "download.safetensors"
            began = time.perf_counter()
            digest = hashlib.sha256() if verify else None
            with client.get(f"{base}/checkpoints/{number}/files/model.safetensors", headers=headers, stream=True, timeout=3600) as response:
                response.raise_for_status()
                with open(downloaded, "wb") as out:
                    for chunk in response.iter_content(CLIENT_BLOCK):
                        if digest is not None:
                            digest.update(chunk)
                        out.write(chunk)
                stated = response.headers["X-Lethe-Sha256"]
            elapsed = time.perf_counter() - began
            received = digest.hexdigest() if digest is not None else None
            assert (received or stated) == stated, (received, stated)
            assert os.path.getsize(downloaded) == size_of_weights
            os.unlink(downloaded)
            return elapsed

        size_of_weights = os.path.getsize(weights)
        file_download_s = best_of(args.repeat, lambda: file_download(verify=False))
        file_verified_s = best_of(args.repeat, lambda: file_download(verify=True))
        peaks = {pid: proc_kib(pid, "VmHWM") for pid in pids}
    finally:
        server.terminate()
        server.wait(timeout=30)
        print((scratch / "server.log").read_text()[-1500:]) if server.returncode not in (0, -15) else None
    upload_s = min([upload_first_s, *reupload_s])
    growth = {pid: (peaks[pid] - resident[pid]) / 1024 for pid in pids}
    result = {
        "bytes": size,
        "server": server_line,
        "repeat": args.repeat,
        "plain_copy_s": copy_s,
        "sha256_s": sha256_s,
        "sha256_ratio": copy_s / sha256_s,
        "upload_s": upload_s,
        "upload_first_s": upload_first_s,
        "reupload_s": min(reupload_s),
        "download_s": download_s,
        "download_bytes": download_bytes[0],
        "upload_ratio": copy_s / upload_s,
        "download_ratio": copy_s / download_s,
        "upload_of_sha256": sha256_s / upload_s,
        "download_of_sha256": sha256_s / download_s,
        "file_download_s": file_download_s,
        "file_download_ratio": copy_s / file_download_s,
        "file_verified_s": file_verified_s,
        "file_verified_ratio": copy_s / file_verified_s,
        "server_rss_before_mib": {str(pid): kib / 1024 for pid, kib in resident.items()},
        "peak_growth_upload_mib": max((upload_peaks[pid] - resident[pid]) / 1024 for pid in pids),
        "peak_growth_mib": max(growth.values()),
        "peak_growth_by_process_mib": {str(pid): mib for pid, mib in growth.items()},
        "peak_reset": peak_reset,
        "new_bytes_on_reregister": stored_after - stored_before,
    }
    mib_s = lambda s: size / s / 1024**2  # noqa: E731
    print(f"server: {server_line} (best of {args.repeat} runs for every figure)")
    print(
        f"plain copy {mib_s(copy_s):7.1f} MiB/s | sha256 of the same bytes {mib_s(sha256_s):7.1f} MiB/s = {result['sha256_ratio']:.2f}x of the copy "
        "(the bound: every byte is hashed in each direction)"
    )
    print(
        f"upload {mib_s(upload_s):7.1f} MiB/s = {result['upload_ratio']:.2f}x of the copy (goal >= 0.7), {result['upload_of_sha256']:.2f}x "
        f"of the sha256 rate; the first upload, which stores the files: {mib_s(upload_first_s):.1f} MiB/s"
    )
    print(f"download {mib_s(download_s):7.1f} MiB/s = {result['download_ratio']:.2f}x of the copy (goal >= 0.7), {result['download_of_sha256']:.2f}x of the sha256 rate")
    print(
        f"file download (sendfile) {mib_s(file_download_s):7.1f} MiB/s = {result['file_download_ratio']:.2f}x of the copy (goal >= 0.7); "
        f"with the client's sha256 check {mib_s(file_verified_s):.1f} MiB/s = {result['file_verified_ratio']:.2f}x"
    )
    print(f"server peak RSS growth {result['peak_growth_mib']:.1f} MiB (goal <= 64); new bytes stored on re-register: {result['new_bytes_on_reregister']} (goal 0)")
    write_result("artifacts", result)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
