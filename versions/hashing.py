"""SHA-256 of a byte stream, computed on a worker thread while the caller moves the bytes.

SHA-256 is one sequential chain, so a single file's hash cannot be split across cores; what can
run in parallel is the hashing and the moving (socket reads, file writes, sends). hashlib
releases the GIL while it hashes a buffer larger than 2 KiB, so a worker thread hashes chunk i
while the caller reads, writes or sends chunk i+1. No Django imports: benchmarked and tested
alone.
"""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

# Below this, handing a chunk to the thread costs more than hashing it in place.
OVERLAP_MIN_BYTES = 256 * 1024


class OverlappedSha256:
    """``update`` returns at once while the chunk is hashed on a worker thread; the next
    ``update`` (or ``hexdigest``) first waits for it. One chunk is in flight at a time, so the
    memory held is that chunk, which the caller keeps anyway, never a growing queue.

    Chunks must be immutable (bytes): the caller may move on while the thread still reads one."""

    def __init__(self):
        self._digest = hashlib.sha256()
        self._executor = None
        self._pending = None
        self.size = 0

    def update(self, chunk):
        self._wait()
        self.size += len(chunk)
        if len(chunk) < OVERLAP_MIN_BYTES:
            self._digest.update(chunk)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._pending = self._executor.submit(self._digest.update, chunk)

    def _wait(self):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def hexdigest(self):
        self._wait()
        return self._digest.hexdigest()

    def close(self):
        """Stop the worker thread (after the chunk in flight, if any)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pending = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def canonical_json(value) -> str:
    """The one JSON spelling that content hashes are taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
