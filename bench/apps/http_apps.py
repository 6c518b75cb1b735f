"""The apps bench/http.py serves: a hello-world and a small JSON app, as
WSGI (Flask for the JSON one) and as the equivalent raw ASGI for uvicorn.
They live in a folder of their own because bench/ on sys.path would let
bench/http.py shadow the stdlib's http package."""
import json

from flask import Flask, jsonify

HELLO = b"Hello, World!"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


flask_app = Flask(__name__)


@flask_app.get("/json")
def hello_json():
    return jsonify(message="Hello, World!", items=list(range(10)))


async def asgi_hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(HELLO))]})
    await send({"type": "http.response.body", "body": HELLO})


async def asgi_json(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"message": "Hello, World!", "items": list(range(10))}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
