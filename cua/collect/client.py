"""The VLM client: any OpenAI-compatible endpoint (vLLM, hosted APIs, `transformers serve`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
import openai

from cua.collect.store import externalize
from cua.recipes import ModelConfig
from cua.records import ModelCall

# What the openai client retries by itself (with backoff, honouring Retry-After).
RETRIED = (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError,
           openai.RateLimitError, openai.ConflictError)


class ChatModel:
    """Sends chat completions with a timeout, the openai client's retries and a limit on the
    requests in flight, and records every call exactly. One instance serves every worker of a
    run, so `concurrency` bounds them all. Never raises for endpoint faults: the returned
    ModelCall carries the error."""

    def __init__(self, config: ModelConfig):
        if config.scripted:
            raise ValueError("the scripted expert has no endpoint")
        self.config = config
        self.client = openai.OpenAI(base_url=config.base_url, timeout=config.timeout_s,
                                    api_key=os.environ.get(config.api_key_env) or "EMPTY",
                                    max_retries=config.max_retries)
        self._slots = threading.BoundedSemaphore(config.concurrency)

    def complete(self, messages: list[dict], role: Literal["goal", "judge", "executor"],
                 put: Callable[[bytes], str], defaults: Mapping[str, Any] = {},
                 overrides: Mapping[str, Any] = {}) -> ModelCall:
        """One completion; `put` stores the request's images (see `store.externalize`). The
        sampling parameters: the config's temperature and max_tokens, then `defaults`, the
        config's top_p and extra_body, then `overrides`."""
        body: dict[str, Any] = {"model": self.config.name, "messages": messages,
                                "temperature": self.config.temperature,
                                "max_tokens": self.config.max_tokens, **defaults}
        if self.config.top_p is not None:
            body["top_p"] = self.config.top_p
        body |= {**self.config.extra_body, **overrides}
        recorded = externalize(body, put)
        start, attempts = time.monotonic(), 1
        try:
            with self._slots:
                raw = self.client.chat.completions.with_raw_response.create(**body)
            attempts = raw.retries_taken + 1
            response = raw.parse()
            text = response.choices[0].message.content if response.choices else None
            if text is None:
                raise ValueError("the response has no message content")
            return ModelCall(role=role, request=recorded, response=response.model_dump(),
                             text=text, seconds=time.monotonic() - start, attempts=attempts)
        except Exception as exc:  # noqa: BLE001 - a dead endpoint or a malformed reply: recorded
            if isinstance(exc, RETRIED):
                attempts = self.config.max_retries + 1
            return ModelCall(role=role, request=recorded, error=f"{type(exc).__name__}: {exc}",
                             seconds=time.monotonic() - start, attempts=attempts)


def endpoint_problem(config: ModelConfig, timeout_s: float = 10.0) -> str | None:
    """Why a run against `config`'s endpoint would fail every request (None: it answers and
    takes the key), found with one request before any desktop is set up."""
    key = os.environ.get(config.api_key_env) or "EMPTY"
    try:
        reply = httpx.get(f"{config.base_url.rstrip('/')}/models", timeout=timeout_s,
                          headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        return f"no model server answers at {config.base_url} ({type(exc).__name__}: {exc})"
    if reply.status_code in (401, 403):
        return (f"{config.base_url} refuses the API key (${config.api_key_env}: "
                f"{'set' if key != 'EMPTY' else 'not set'}): HTTP {reply.status_code}")
    return None
