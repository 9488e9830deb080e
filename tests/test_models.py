"""The VLM client against a scripted HTTP double on 127.0.0.1 (a unit test of one piece):
retries with backoff, timeouts, malformed replies and dead endpoints are recorded, not raised."""

from __future__ import annotations

import socket
import threading

from cua.collect.client import ChatModel, ModelConfig
from cua.collect.store import ScreenBuffer
from tests.conftest import chat_reply

PNG_URL = "data:image/png;base64,iVBORw0KGgo="


def _model(url: str, **options) -> ChatModel:
    return ChatModel(ModelConfig(name="m", base_url=url, **options))


MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                         {"type": "image_url", "image_url": {"url": PNG_URL}}]}]


def test_retries_server_errors_then_records_the_exact_call(double):
    server = double((500, {"error": "boom"}, 0), (503, {"error": "busy"}, 0),
                    (200, chat_reply("Thought: ok\nAction: wait()"), 0))
    screens = ScreenBuffer()
    call = _model(server.url, temperature=0.0, max_tokens=1000).complete(MESSAGES, "executor",
                                                                        screens.put)
    assert call.error is None and call.attempts == 3 and call.text.startswith("Thought: ok")
    assert server.requests[-1]["temperature"] == 0.0 and server.requests[-1]["max_tokens"] == 1000
    image = call.request["messages"][0]["content"][1]["image_url"]["url"]
    assert image.startswith("screen://") and image[9:] in screens.screens  # stored once, by hash
    assert call.response["choices"][0]["message"]["content"] == call.text


def test_gives_up_after_the_retry_budget(double):
    server = double(*[(500, {"error": "down"}, 0)] * 3)
    call = _model(server.url, max_retries=2).complete(MESSAGES, "judge", ScreenBuffer().put)
    assert call.text is None and "InternalServerError" in call.error and call.attempts == 3


def test_timeout_malformed_json_and_refused_connection(double):
    slow = double((200, chat_reply("late"), 2.0), (200, chat_reply("late"), 2.0))
    call = _model(slow.url, timeout_s=0.3, max_retries=1).complete(MESSAGES, "goal",
                                                                   ScreenBuffer().put)
    assert "Timeout" in call.error and call.attempts == 2
    broken = double((200, b"{not json", 0))
    call = _model(broken.url, max_retries=0).complete(MESSAGES, "goal", ScreenBuffer().put)
    assert call.error and call.text is None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    call = _model(dead, max_retries=1).complete(MESSAGES, "goal", ScreenBuffer().put)
    assert "APIConnectionError" in call.error and call.attempts == 2


def test_concurrency_bounds_the_requests_in_flight_from_every_worker(double):
    """One client serves every worker of a run, so `concurrency` is one limit for them all."""
    from concurrent.futures import ThreadPoolExecutor

    from cua.collect.agents import RoleFactory
    from cua.collect.recipe import CollectRecipe
    from cua.collect.worker import Worker

    server = double(*[(200, chat_reply("Thought: ok\nAction: wait()"), 0.3)] * 6)
    in_flight, peak, lock = 0, 0, threading.Lock()
    handler = server.server.RequestHandlerClass
    original_post, original_answer = handler.do_POST, handler.send_response

    def counting(self):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        original_post(self)

    def answering(self, *args):
        nonlocal in_flight
        with lock:  # before the answer's first byte: the client cannot have it, nor send more
            in_flight -= 1
        original_answer(self, *args)

    handler.do_POST, handler.send_response = counting, answering
    model = {"name": "m", "base_url": server.url, "concurrency": 2}
    recipe = CollectRecipe.model_validate({"name": "c", "content": {"generate": {"workbooks": 1}},
                                           "envs": ["calc"], "model": model})
    roles = RoleFactory([recipe.model])
    workers = [Worker(recipe, roles) for _ in range(3)]
    assert workers[0].agent.model is workers[1].agent.model is workers[2].agent.model
    calls = [(w.agent.model, i) for i in range(2) for w in workers]
    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda c: c[0].complete(MESSAGES, "executor", ScreenBuffer().put),
                             calls))
    assert all(call.error is None for call in done)
    assert peak == 2
