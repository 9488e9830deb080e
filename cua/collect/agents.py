"""Role implementations by model name: `scripted` is the built-in expert, any other name an
OpenAI-compatible endpoint. One client per endpoint config serves every worker of a run."""

from __future__ import annotations

from collections.abc import Iterable

from cua.collect.client import ChatModel
from cua.collect.expert.scripted import ScriptedAgent, ScriptedGoalGenerator, ScriptedJudge
from cua.collect.roles import (
    Agent,
    GoalGenerator,
    Judge,
    ModelAgent,
    ModelGoalGenerator,
    ModelJudge,
)
from cua.formats import AgentFormat
from cua.recipes import ModelConfig


class RoleFactory:
    def __init__(self, configs: Iterable[ModelConfig]):
        self.clients = {c.model_dump_json(): ChatModel(c) for c in configs if not c.scripted}

    def client(self, config: ModelConfig) -> ChatModel:
        return self.clients[config.model_dump_json()]

    def goal_generator(self, config: ModelConfig, seed: int = 0,
                       families: Iterable[str] = ()) -> GoalGenerator:
        if config.scripted:
            return ScriptedGoalGenerator(seed, families)
        return ModelGoalGenerator(self.client(config))

    def judge(self, config: ModelConfig) -> Judge:
        return ScriptedJudge() if config.scripted else ModelJudge(self.client(config))

    def agent(self, config: ModelConfig, agent_format: AgentFormat) -> Agent:
        """A new agent: one per worker, since the scripted one holds its plan."""
        if config.scripted:
            return ScriptedAgent(agent_format)
        return ModelAgent(self.client(config), agent_format)
