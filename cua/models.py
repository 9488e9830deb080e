"""The VLM client: any OpenAI-compatible endpoint (vLLM, hosted APIs, `transformers serve`)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Literal

import openai
from pydantic import BaseModel, ConfigDict, Field

from cua.records import ModelCall
from cua.store import externalize

RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError,
             openai.RateLimitError)


class ModelConfig(BaseModel):
    """One model endpoint and its sampling (UI-TARS-1.5 reference: temperature 0,
    max_tokens 1000). `name: scripted` selects the built-in scripted expert instead."""

    model_config = ConfigDict(extra="forbid")

    name: str = "scripted"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = Field(1000, gt=0)
    top_p: float | None = None
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    concurrency: int = Field(8, ge=1)
    extra_body: dict[str, Any] = {}

    @property
    def scripted(self) -> bool:
        return self.name == "scripted"


class ChatModel:
    """Sends chat completions with timeouts, bounded retries with exponential backoff and a
    concurrency limit, and records every call exactly. Never raises for endpoint faults: the
    returned ModelCall carries the error."""

    def __init__(self, config: ModelConfig):
        if config.scripted or not config.base_url:
            raise ValueError("a model endpoint needs model.base_url (and a name other than "
                             "'scripted')")
        self.config = config
        self.client = openai.OpenAI(base_url=config.base_url, timeout=config.timeout_s,
                                    api_key=os.environ.get(config.api_key_env) or "EMPTY",
                                    max_retries=0)
        self._slots = threading.BoundedSemaphore(config.concurrency)

    def complete(self, messages: list[dict], role: Literal["goal", "judge", "executor"],
                 put: Callable[[bytes], str]) -> ModelCall:
        """One completion; `put` stores the request's images (see `cua.store.externalize`)."""
        body: dict[str, Any] = {"model": self.config.name, "messages": messages,
                                "temperature": self.config.temperature,
                                "max_tokens": self.config.max_tokens, **self.config.extra_body}
        if self.config.top_p is not None:
            body["top_p"] = self.config.top_p
        recorded = externalize(body, put)
        start, error = time.monotonic(), None
        for attempt in range(1, self.config.max_retries + 2):
            try:
                with self._slots:
                    response = self.client.chat.completions.create(**body)
                text = response.choices[0].message.content if response.choices else None
                if text is None:
                    raise ValueError("the response has no message content")
                return ModelCall(role=role, request=recorded, response=response.model_dump(),
                                 text=text, seconds=time.monotonic() - start, attempts=attempt)
            except RETRYABLE as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt <= self.config.max_retries:
                    time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            except (openai.APIError, ValueError, TypeError, AttributeError, IndexError) as exc:
                error = f"{type(exc).__name__}: {exc}"  # malformed reply or 4xx: no retry
                break
        return ModelCall(role=role, request=recorded, error=error,
                         seconds=time.monotonic() - start, attempts=attempt)
