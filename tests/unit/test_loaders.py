"""Both YAML formats report every problem at once, each with its line; duplicate keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from costrouter.budget import load_policy
from costrouter.config.groups import load_router_config
from costrouter.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "router.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path, loader: object = load_router_config) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as raised:
        loader(path)  # type: ignore[operator]
    assert raised.value.source == str(path)
    return [(problem.line, problem.location, problem.reason) for problem in raised.value.problems]


def test_a_duplicate_key_is_an_error_with_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "groups:\n  fast:\n    deployments:\n      - model: openai/a\n        model: openai/b\n",
    )
    assert problems_of(path) == [
        (5, "model", "duplicate key 'model' (first given on line 4); YAML would keep only the last")
    ]


def test_a_duplicate_key_in_the_budget_policy_too(tmp_path: Path) -> None:
    path = write(tmp_path, "budgets:\n  - scope: session\n    limit_usd: 1\n    limit_usd: 100\n", "budgets.yaml")
    found = problems_of(path, load_policy)
    assert found[0][:2] == (4, "limit_usd")


def test_native_format_every_problem_at_once_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """groups:
  fast:
    deployments:
      - model: openai/a
        timeout: -1
    fallbacks: [nowhere, fast]
  slow:
    deployments:
      - model: openai/b
        id: fast-0
    fallbacks: [ghost]
router:
  num_retries: many
""",
    )
    found = problems_of(path)
    assert found == [
        (5, "groups.fast.deployments[0].timeout", "Input should be greater than 0"),
        (6, "groups.fast.fallbacks[0]", "unknown fallback target 'nowhere'"),
        (6, "groups.fast.fallbacks[1]", "a group cannot fall back to itself"),
        (10, "groups.slow.deployments[0].id", "duplicate deployment id 'fast-0' (also in group 'fast')"),
        (11, "groups.slow.fallbacks[0]", "unknown fallback target 'ghost'"),
        (13, "router.num_retries", "Input should be a valid integer, unable to parse string as an integer"),
    ]


def test_proxy_format_every_problem_at_once_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """model_list:
  - model_name: fast
    litellm_params: "notadict"
  - model_name: capable
    litellm_params:
      model: openai/gpt-4o
      timeout: -5
  - litellm_params:
      model: openai/x
  - model_name: cheap
    litellm_params:
      model: openai/y
    model_info: [1, 2]
router_settings:
  num_retries: -1
  fallbacks: [{capable: [fast, nowhere]}, {cheap: notalist}]
general_setings: {}
""",
    )
    found = problems_of(path)
    assert (3, "model_list[0].litellm_params", "must be a mapping of parameters, not str 'notadict'") in found
    assert (7, "groups.capable.deployments[0].timeout", "Input should be greater than 0") in found
    assert (8, "model_list[2]", "needs model_name and litellm_params") in found
    assert (13, "model_list[3].model_info", "must be a mapping of parameters, not list [1, 2]") in found
    assert (15, "router.num_retries", "Input should be greater than or equal to 0") in found
    assert (16, "groups.capable.fallbacks[1]", "unknown fallback target 'nowhere'") in found
    assert (16, "router_settings.fallbacks[1].cheap", "must be a list of group names") in found
    assert (
        17,
        "general_setings",
        "unknown key (did you mean 'general_settings'? LiteLLM's proxy would ignore it silently)",
    ) in found
    assert [line for line, _, _ in found] == sorted(line for line, _, _ in found)
