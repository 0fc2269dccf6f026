"""A 1 GiB checkpoint through the API: upload and download throughput against a plain copy of the
same bytes measured in the same run, the server process's peak memory growth, and the bytes
stored when identical files are registered again.

    python bench/bench_artifacts.py [--gib 1.0]

Method: a real server process (``manage.py runserver --noreload`` on 127.0.0.1, its own
PostgreSQL database and artifact folder). The client streams the multipart body from disk with a
Content-Length (a file-like body, never built in memory) and streams the download to disk with
``iter_content``. Peak memory is the server's VmHWM (kernel high-water mark of its resident set,
from /proc) minus its resident set after a warm-up request. Goals (issue 9): growth <= 64 MiB,
throughput >= 0.7x a plain copy, re-registering identical files stores 0 new bytes.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import PG_SERVER, ROOT, django_setup, write_result  # noqa: E402

CHUNK = 8 * 1024 * 1024


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
            out.write(zeros[:min(left, CHUNK)])
            left -= min(left, CHUNK)
    return path


class MultipartBody:
    """A multipart/form-data body read from files on disk as it is sent (requests streams any
    object with read() and __len__ with a Content-Length)."""

    def __init__(self, files, boundary="lethe-bench-boundary"):
        self.boundary = boundary
        self.parts = []
        for name, path in files.items():
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{Path(name).name}\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
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
        chunk = self.data[self.offset:self.offset + size]
        self.offset += len(chunk)
        return chunk

    def close(self):
        pass


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


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_bytes(root):
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    import requests

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
    began = time.perf_counter()
    shutil.copyfile(weights, scratch / "plain-copy.safetensors")
    copy_s = time.perf_counter() - began
    os.unlink(scratch / "plain-copy.safetensors")

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "LETHE_VAR_DIR": str(var), "LETHE_DEBUG": "0", "TMPDIR": str(scratch)}
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(scratch / "server.log", "wb"))
    base = f"http://127.0.0.1:{port}/api/v1/projects/bench/models/big"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/checkpoints/", headers=headers, timeout=5).raise_for_status()
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        resident = proc_kib(server.pid, "VmRSS")
        peak_reset = reset_peak(server.pid)
        files = {"model.safetensors": weights, "config.json": source / "config.json"}

        def upload():
            body = MultipartBody(files)
            began = time.perf_counter()
            response = requests.post(f"{base}/checkpoints/", data=body, headers={**headers, "Content-Type": body.content_type}, timeout=3600)
            elapsed = time.perf_counter() - began
            assert response.status_code == 201, (response.status_code, response.text[:300])
            return response.json()["number"], elapsed

        number, upload_s = upload()
        upload_peak = proc_kib(server.pid, "VmHWM")
        stored_before = tree_bytes(var / "artifacts")
        began = time.perf_counter()
        downloaded = scratch / "download.tar"
        with requests.get(f"{base}/checkpoints/{number}/download/", headers=headers, stream=True, timeout=3600) as response:
            response.raise_for_status()
            with open(downloaded, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
        download_s = time.perf_counter() - began
        download_bytes = os.path.getsize(downloaded)
        os.unlink(downloaded)
        peak = proc_kib(server.pid, "VmHWM")
        _, again_s = upload()
        stored_after = tree_bytes(var / "artifacts")
        peak_again = proc_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
        print((scratch / 'server.log').read_text()[-1500:]) if server.returncode not in (0, -15) else None
    result = {
        "bytes": size, "plain_copy_s": copy_s, "upload_s": upload_s, "download_s": download_s, "download_bytes": download_bytes,
        "reupload_s": again_s, "upload_ratio": copy_s / upload_s, "download_ratio": copy_s / download_s,
        "server_rss_before_mib": resident / 1024, "peak_growth_upload_mib": (upload_peak - resident) / 1024,
        "peak_growth_mib": (max(peak, peak_again) - resident) / 1024, "peak_reset": peak_reset,
        "new_bytes_on_reregister": stored_after - stored_before,
    }
    mib_s = lambda s: size / s / 1024**2  # noqa: E731
    print(f"plain copy {mib_s(copy_s):7.1f} MiB/s | upload {mib_s(upload_s):7.1f} MiB/s ({result['upload_ratio']:.2f}x, goal >= 0.7) | "
          f"download {mib_s(download_s):7.1f} MiB/s ({result['download_ratio']:.2f}x, goal >= 0.7)")
    print(f"server peak RSS growth {result['peak_growth_mib']:.1f} MiB (goal <= 64); new bytes stored on re-register: "
          f"{result['new_bytes_on_reregister']} (goal 0)")
    write_result("artifacts", result)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
