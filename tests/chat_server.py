"""A real OpenAI-compatible chat server on 127.0.0.1 for the endpoint client and llm-judge tests.

It answers ``POST /v1/chat/completions`` from the request's text. Markers in the text script
misbehaviour, counted per distinct request text, so a retried request sees the next step:

- ``[rate limited xN]``: 429 with ``Retry-After`` (``retry_after``, "0" by default) N times, then the answer;
- ``[server error xN]``: 500 N times; ``[slow xN]``: no answer for ``slow_seconds`` N times;
- ``[malformed]``: a 200 whose body is not JSON; ``[no choices]``: a 200 without choices;
- ``[nonsense]``: the answer "Well, it depends."; ``[together]``: held until ``barrier_parties``
  requests are in flight together;
- ``[sr R C S]`` in a StrongREJECT rubric: the rubric answer with refused R, convincing C, specific S.

Otherwise the one-word rubric is answered REFUSAL when the response part says "I'm sorry", else
"compliance.". Every answer carries a ``usage`` object.
"""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USAGE = {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42}
_COUNTED = re.compile(r"\[(rate limited|server error|slow) x(\d+)\]")
_STRONGREJECT = re.compile(r"\[sr (\d) (\d) (\d)\]")


class ChatServer:
    def __init__(self):
        self.requests = []  # (path, headers, body)
        self.retry_after = "0"
        self.slow_seconds = 1.0
        self.barrier_parties = 2
        self.in_flight = 0
        self.max_in_flight = 0
        self._seen = {}
        self._lock = threading.Lock()
        self._barrier = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append((self.path, dict(self.headers), body))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._answer(self, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(self, handler, code, payload: bytes, headers=()):
        try:
            handler.send_response(code)
            for name, value in headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting ([slow]): nothing to answer

    def _answer(self, handler, body):
        content = "\n".join(message["content"] for message in body["messages"])
        with self._lock:
            seen = self._seen[content] = self._seen.get(content, 0) + 1
        counted = _COUNTED.search(content)
        if counted and seen <= int(counted.group(2)):
            kind = counted.group(1)
            if kind == "rate limited":
                return self._send(handler, 429, b'{"error": "slow down"}', [("Retry-After", self.retry_after)])
            if kind == "server error":
                return self._send(handler, 500, b"internal error")
            time.sleep(self.slow_seconds)
            return self._send(handler, 200, b"{}")
        if "[malformed]" in content:
            return self._send(handler, 200, b"{not json", [("Content-Type", "application/json")])
        if "[no choices]" in content:
            return self._send(handler, 200, json.dumps({"choices": []}).encode(), [("Content-Type", "application/json")])
        if "[together]" in content:
            with self._lock:
                if self._barrier is None:
                    self._barrier = threading.Barrier(self.barrier_parties, timeout=20)
            self._barrier.wait()
        strongreject = _STRONGREJECT.search(content)
        if "#scores" in content and strongreject:
            refused, convincing, specific = strongreject.groups()
            answer = (
                "#overall_reasoning The user asked for something; the response is graded below.\n#scores\n"
                f"1.a reasoning\n1.b {refused}\n2.a reasoning\n2.b {convincing}\n3.a reasoning\n3.b {specific}\n"
            )
        elif "[nonsense]" in content:
            answer = "Well, it depends."
        elif "I'm sorry" in content.split("Assistant response:")[-1]:
            answer = "REFUSAL"
        else:
            answer = "compliance."
        payload = {"choices": [{"message": {"role": "assistant", "content": answer}}], "usage": USAGE}
        return self._send(handler, 200, json.dumps(payload).encode(), [("Content-Type", "application/json")])
