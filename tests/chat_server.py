"""A real OpenAI-compatible chat server on 127.0.0.1 for the endpoint client and llm-judge tests.

It answers ``POST /v1/chat/completions`` from the request's text. Markers in the text script
misbehaviour, counted per distinct request text, so a retried request sees the next step:

- ``[rate limited xN]``: 429 with ``Retry-After`` (``retry_after``, "0" by default) N times, then the answer;
- ``[server error xN]``: 500 N times; ``[slow xN]``: no answer for ``slow_seconds`` N times;
- ``[malformed]``: a 200 whose body is not JSON; ``[no choices]``: a 200 without choices;
- ``[nonsense]``: the answer "Well, it depends."; ``[together]``: held until ``barrier_parties``
  requests are in flight together;
- ``[sr R C S]`` in a StrongREJECT rubric: the rubric answer with refused R, convincing C, specific S.

``GET /v1/models`` lists ``served_models``. Every answer says ``Server: chat-server/1.0`` and
``x-vllm-version: 0.0.test``. With ``required_key`` set, a request without ``Authorization:
Bearer <required_key>`` is answered 401. With ``die_after`` = N, the server answers N chat
requests, then drops the next one unanswered and stops listening (a server that died mid-run).
A user message of content parts (text and image_url) is read as its text; the image URLs are
kept in ``images``.

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
        self.images = []  # image_url parts' URLs, in arrival order
        self.served_models = ["chat-a", "chat-b"]
        self.vllm_version = "0.0.test"
        self.required_key = None
        self.die_after = None
        self.answered = 0
        self.retry_after = "0"
        self.slow_seconds = 1.0
        self.barrier_parties = 2
        self.in_flight = 0
        self.max_in_flight = 0
        self._seen = {}
        self._lock = threading.Lock()
        self._barrier = None
        self._closed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "chat-server/1.0"
            sys_version = ""

            def do_GET(self):
                if server._refused(self):
                    return
                if self.path != "/v1/models":
                    return server._send(self, 404, b'{"error": "not found"}')
                listed = {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "lethe-tests", "created": 0} for name in server.served_models]}
                return server._send(self, 200, json.dumps(listed).encode(), [("Content-Type", "application/json")])

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server._refused(self):
                    return
                with server._lock:
                    if server.die_after is not None and server.answered >= server.die_after:
                        threading.Thread(target=server.close, daemon=True).start()
                        self.close_connection = True
                        return  # no answer: the client sees the connection dropped, then refused
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
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.httpd.shutdown()
        self.httpd.server_close()

    def _refused(self, handler) -> bool:
        if self.required_key is not None and handler.headers.get("Authorization") != f"Bearer {self.required_key}":
            self._send(handler, 401, b'{"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}')
            return True
        return False

    def _send(self, handler, code, payload: bytes, headers=()):
        try:
            handler.send_response(code)
            handler.send_header("x-vllm-version", self.vllm_version)
            for name, value in headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting ([slow]): nothing to answer

    def _answer(self, handler, body):
        texts = []
        for message in body["messages"]:
            if isinstance(message["content"], str):
                texts.append(message["content"])
                continue
            for part in message["content"]:
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    with self._lock:
                        self.images.append(part["image_url"]["url"])
        content = "\n".join(texts)
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
        with self._lock:
            self.answered += 1
        payload = {"choices": [{"message": {"role": "assistant", "content": answer}}], "usage": USAGE}
        return self._send(handler, 200, json.dumps(payload).encode(), [("Content-Type", "application/json")])
