"""The model-group YAML: both formats, and errors that name file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from costrouter.config.groups import load_router_config, parse_router_config
from costrouter.errors import ConfigError
from costrouter.routing.building import build_model_list

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return path


def problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def test_the_shipped_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTROUTER_DEMO_API_BASE", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("COSTROUTER_DEMO_API_KEY", "demo")
    config = load_router_config(CONFIGS / "router.yaml")
    assert set(config.groups) == {"fast", "capable", "local", "embed", "rerank"}
    assert config.groups["embed"].deployments[0].mode == "embedding"
    assert config.reachable_groups("capable") == ["capable", "fast", "local"]
    model_list = build_model_list(config)
    primary = next(entry for entry in model_list if entry["model_info"]["id"] == "fast-primary")
    assert primary["litellm_params"]["order"] == 1
    assert primary["litellm_params"]["api_key"] == "demo"
    # Prices reach LiteLLM in model_info only: in litellm_params LiteLLM re-registers them every call.
    assert primary["model_info"]["input_cost_per_token"] == 0.00000015
    assert not any("cost_per" in key for key in primary["litellm_params"])


def test_priorities_map_onto_litellm_order() -> None:
    config = parse_router_config(
        {
            "groups": {
                "g": {
                    "deployments": [
                        {"model": "openai/a", "priority": 10},
                        {"model": "openai/b", "priority": -5},
                        {"model": "openai/c", "priority": 10},
                    ]
                }
            }
        }
    )
    orders = [entry["litellm_params"]["order"] for entry in build_model_list(config)]
    assert orders == [2, 1, 2]
    assert [entry["model_info"]["id"] for entry in build_model_list(config)] == ["g-0", "g-1", "g-2"]


def test_equal_priorities_load_balance_without_order() -> None:
    config = parse_router_config({"groups": {"g": {"deployments": [{"model": "openai/a"}, {"model": "openai/b"}]}}})
    assert all("order" not in entry["litellm_params"] for entry in build_model_list(config))


def test_unknown_key_names_file_field_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "groups:\n  fast:\n    deployments:\n      - model: openai/a\n        pirce: 3\n",
    )
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    assert error.value.source == str(path)
    assert problems(error) == ["groups.fast.deployments[0].pirce (line 5): unknown key"]
    assert str(path) in str(error.value)


def test_unknown_fallback_target(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  fast:\n    deployments: [{model: openai/a}]\n    fallbacks: [nowhere]\n")
    with pytest.raises(ConfigError, match="unknown fallback target 'nowhere'"):
        load_router_config(path)


def test_group_without_deployment(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  fast:\n    deployments: []\n")
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    assert problems(error)[0].startswith("groups.fast.deployments (line 3): List should have at least 1 item")


def test_priority_must_be_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  fast:\n    deployments:\n      - model: openai/a\n        priority: first\n")
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    assert problems(error) == ["groups.fast.deployments[0].priority (line 5): Input should be a valid integer"]


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  fast: [unclosed\n")
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    assert error.value.problems[0].line is not None
    assert "malformed YAML" in str(error.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_router_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_router_config(write(tmp_path, ""))


def test_missing_env_var_at_build_time_names_the_field_not_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    config = parse_router_config(
        {"groups": {"fast": {"deployments": [{"model": "openai/a", "api_key": "os.environ/NO_SUCH_KEY_VAR"}]}}}
    )
    with pytest.raises(ConfigError) as error:
        build_model_list(config, "router.yaml")
    assert problems(error) == ["groups.fast.deployments[0].api_key: environment variable NO_SUCH_KEY_VAR is not set"]


def test_duplicate_deployment_ids_are_rejected() -> None:
    with pytest.raises(ConfigError, match="duplicate deployment id 'x'"):
        parse_router_config(
            {
                "groups": {
                    "a": {"deployments": [{"id": "x", "model": "openai/a"}]},
                    "b": {"deployments": [{"id": "x", "model": "openai/b"}]},
                }
            }
        )


def test_litellm_proxy_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_TEST_KEY", "sk-test")
    path = write(
        tmp_path,
        """
model_list:
  - model_name: fast
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/PROXY_TEST_KEY
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      order: 1
      rpm: 100
    model_info:
      id: fast-a
  - model_name: fast
    litellm_params:
      model: openai/gpt-4.1-nano
      order: 2
  - model_name: capable
    litellm_params:
      model: openai/gpt-4o
router_settings:
  num_retries: 3
  routing_strategy: simple-shuffle
  fallbacks: [{capable: [fast]}]
litellm_settings:
  drop_params: true
""",
    )
    config = load_router_config(path)
    assert config.router.num_retries == 3
    assert config.groups["capable"].fallbacks == ["fast"]
    fast = config.groups["fast"].deployments
    assert [d.id for d in fast] == ["fast-a", None]
    assert [d.priority for d in fast] == [1, 2]
    # Prices stay where the proxy file wrote them (the precedence knows its layers).
    assert fast[0].file_prices() == {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}
    assert fast[0].litellm_params == {
        "input_cost_per_token": 0.000001,
        "output_cost_per_token": 0.000002,
        "order": 1,  # reaches LiteLLM as written, as the proxy passes it
        "rpm": 100,
    }
    model_list = build_model_list(config)
    assert model_list[0]["litellm_params"]["api_key"] == "sk-test"


def test_proxy_config_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "model_list: []\nrouter_settingz: {}\n")
    with pytest.raises(ConfigError, match=r"router_settingz \(line 2\): unknown key"):
        load_router_config(path)


@pytest.mark.parametrize(
    ("router", "field", "reason"),
    [
        ("num_retries: 1.0e+9", "router.num_retries", "less than or equal to 100"),
        ("num_retries: -1", "router.num_retries", "greater than or equal to 0"),
        ("retry_after: .inf", "router.retry_after", "finite number"),
        ("retry_after: 1.0e+9", "router.retry_after", "less than or equal to 86400"),
        ("cooldown_time: .nan", "router.cooldown_time", "finite number"),
        ("cooldown_time: 1.0e+30", "router.cooldown_time", "less than or equal to 86400"),
        ("allowed_fails: 1000000000000", "router.allowed_fails", "less than or equal to 1000000"),
        ("timeout: .inf", "router.timeout", "finite number"),
        ("timeout: 0", "router.timeout", "greater than 0"),
    ],
)
def test_router_settings_are_range_checked_at_load(tmp_path: Path, router: str, field: str, reason: str) -> None:
    path = write(tmp_path, f"groups:\n  fast:\n    deployments:\n      - model: openai/a\nrouter:\n  {router}\n")
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    assert error.value.source == str(path)
    (problem,) = problems(error)
    assert problem.startswith(f"{field} (line 6)")
    assert reason in problem


@pytest.mark.parametrize("setting", ["timeout: .inf", "stream_timeout: 1.0e+12", "timeout: .nan"])
def test_deployment_timeouts_are_range_checked_at_load(tmp_path: Path, setting: str) -> None:
    path = write(tmp_path, f"groups:\n  fast:\n    deployments:\n      - model: openai/a\n        {setting}\n")
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    (problem,) = problems(error)
    assert problem.startswith(f"groups.fast.deployments[0].{setting.split(':', maxsplit=1)[0]} (line 5)")


def test_proxy_router_settings_are_range_checked_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model_list:\n  - model_name: fast\n    litellm_params:\n      model: openai/a\n"
        "router_settings:\n  num_retries: 100000\n",
    )
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    assert any(problem.startswith("router.num_retries") for problem in problems(error))
