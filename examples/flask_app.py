"""A small Flask JSON app, served by gmp's gunicorn worker.

    pip install '.[serve]'
    gunicorn -k gmp.gunicorn.Worker -b 127.0.0.1:8000 examples.flask_app:app
    curl http://127.0.0.1:8000/json
"""
import time

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/json")
def hello_json():
    return jsonify(message="Hello, World!", n=len(request.args))


@app.get("/sleep")
def sleep():
    seconds = float(request.args.get("s", "0.1"))
    time.sleep(seconds)                     # parks only this request's G
    return jsonify(slept=seconds)


@app.post("/echo")
def echo():
    return jsonify(request.get_json(force=True))
