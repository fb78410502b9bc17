"""``mode``: checked at load against the modes costrouter routes, in its or LiteLLM's spelling, with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from costrouter.config.groups import load_router_config, parse_router_config
from costrouter.config.modes import LITELLM_SPELLINGS, ROUTED_MODES, canonical_mode, mode_problem
from costrouter.errors import ConfigError
from costrouter.routing import operations
from costrouter.routing.operations import modes as operation_modes


def test_the_routed_modes_are_those_the_operations_reach() -> None:
    every = [getattr(operations, name) for name in operations.__all__]
    reached = set().union(*(operation.modes for operation in every if isinstance(operation, operations.Operation)))
    assert reached == ROUTED_MODES


@pytest.mark.parametrize(("written", "kept"), [("embedding", "embedding"), ("anthropic_messages", "messages")])
def test_litellm_spellings_are_accepted(written: str, kept: str) -> None:
    config = parse_router_config({"groups": {"g": {"deployments": [{"model": "openai/x", "mode": written}]}}})
    assert config.groups["g"].deployments[0].mode == kept
    assert canonical_mode(written) == kept


def test_a_typo_is_an_error_naming_file_line_and_the_routed_modes(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        "groups:\n  embed:\n    deployments:\n      - model: openai/text-embedding-3-small\n        mode: embeddings\n"
    )

    with pytest.raises(ConfigError) as raised:
        load_router_config(path)

    (problem,) = raised.value.problems
    assert problem.line == 5
    assert problem.location == "groups.embed.deployments[0].mode"
    assert "unknown mode 'embeddings' (did you mean 'embedding'?)" in problem.reason
    assert "rerank" in problem.reason


def test_a_proxy_model_info_mode_is_checked_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: embed\n"
        "    litellm_params:\n"
        "      model: openai/text-embedding-3-small\n"
        "    model_info:\n"
        "      mode: embeddings\n"
        "  - model_name: live\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-realtime-preview\n"
        "    model_info:\n"
        "      mode: realtime\n"
    )

    with pytest.raises(ConfigError) as raised:
        load_router_config(path)

    lines = {problem.line: problem.reason for problem in raised.value.problems}
    assert set(lines) == {6, 11}
    assert "unknown mode 'embeddings'" in lines[6]
    assert "'realtime' is a LiteLLM mode costrouter does not route" in lines[11]


def test_a_proxy_model_info_mode_reaches_the_router_and_litellm_unchanged() -> None:
    config = parse_router_config(
        {
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": {"model": "openai/x"},
                    "model_info": {"mode": "anthropic_messages"},
                }
            ]
        }
    )
    deployment = config.groups["m"].deployments[0]
    assert operation_modes.deployment_mode(deployment) == "messages"
    assert deployment.model_info["mode"] == "anthropic_messages"  # LiteLLM's health check reads its own spelling


def test_the_price_map_mode_is_the_base_models() -> None:
    config = parse_router_config(
        {
            "groups": {
                "g": {
                    "deployments": [
                        {"model": "azure/my-embedder", "model_info": {"base_model": "azure/text-embedding-3-small"}}
                    ]
                }
            }
        }
    )
    assert operation_modes.deployment_mode(config.groups["g"].deployments[0]) == "embedding"


@pytest.mark.parametrize("value", [3, None])
def test_a_mode_that_is_not_a_string_is_refused(value: object) -> None:
    assert mode_problem(value) is not None


def test_every_litellm_spelling_names_a_routed_mode() -> None:
    assert set(LITELLM_SPELLINGS.values()) <= ROUTED_MODES
