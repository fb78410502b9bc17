"""Every LiteLLM proxy config of the corpus loads into the Router LiteLLM's proxy builds from it.

``tests/proxy_configs`` holds one file per kind of content real proxy files carry (model
names with '/', wildcard groups, proxy-only sections, ``custom_provider_map``,
``router_settings`` beyond the six costrouter maps). Each loads with
``CostRouter.from_files`` and ``costrouter validate``, and the LiteLLM Router costrouter
builds is compared, deployment by deployment and setting by setting, with the Router built
the way LiteLLM's proxy builds it (:mod:`tests.proxy_router`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import litellm
import pytest
from typer.testing import CliRunner

from costrouter import CostRouter
from costrouter.cli.commands import app
from costrouter.config.groups import Deployment, load_router_config
from costrouter.errors import ConfigError
from costrouter.otel import semconv as sc
from costrouter.pricing.prices import deployment_price
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import count_prompt_tokens
from tests.proxy_router import deployments_of, proxy_config, proxy_router, setting_of

CORPUS = Path(__file__).resolve().parents[1] / "proxy_configs"
LOADABLE = sorted(path.name for path in CORPUS.glob("*.yaml") if path.name != "no_model_list.yaml")
MESSAGES = [{"role": "user", "content": "name three rivers"}]

ROUTER_ATTRIBUTES = (
    "num_retries",
    "retry_after",
    "allowed_fails",
    "cooldown_time",
    "routing_strategy",
    "timeout",
    "stream_timeout",
    "enable_pre_call_checks",
    "cache_responses",
    "max_fallbacks",
    "default_priority",
    "model_group_alias",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
)
"""Router attributes that hold what ``router_settings`` configures (LiteLLM's names)."""


@pytest.fixture(autouse=True)
def corpus_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUS_API_KEY", "sk-corpus")
    monkeypatch.setenv("CORPUS_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CORPUS_MASTER_KEY", "sk-master")
    monkeypatch.setenv("CORPUS_DATABASE_URL", "postgresql://u:p@127.0.0.1:9/db")


def _ranked(deployments: list[dict[str, Any]]) -> list[int | None]:
    return [deployment["litellm_params"].get("order") for deployment in deployments]


@pytest.mark.parametrize("name", LOADABLE)
def test_costrouter_builds_the_router_the_proxy_builds(name: str) -> None:
    path = CORPUS / name
    router = CostRouter.from_files(path)
    ours = router.litellm_router
    theirs = proxy_router(path)
    written = proxy_config(path)  # with its includes merged in

    assert [d["model_name"] for d in deployments_of(ours)] == [d["model_name"] for d in deployments_of(theirs)]
    assert len(deployments_of(ours)) == len(written["model_list"])
    assert _ranked(deployments_of(ours)) == _ranked(deployments_of(theirs))
    for mine, proxy, entry in zip(deployments_of(ours), deployments_of(theirs), written["model_list"], strict=True):
        # The prices a file writes in litellm_params reach LiteLLM in model_info only (there the
        # Router registers them once, not on every call); every other parameter is the proxy's.
        their_params = dict(proxy["litellm_params"])
        prices = {key: their_params.pop(key) for key in list(their_params) if key not in mine["litellm_params"]}
        assert mine["litellm_params"] == their_params, entry["model_name"]
        for key, value in prices.items():
            assert "cost" in key, (entry["model_name"], key)
            assert value is None or mine["model_info"][key] == value, (entry["model_name"], key)
        file_info = entry.get("model_info") or {}
        # costrouter names a deployment {group}-{index} where the file gives no id (LiteLLM hashes one),
        # and adds the prices it resolved; everything else LiteLLM keeps is the same.
        for key, value in proxy["model_info"].items():
            if key == "id" and "id" not in file_info:
                continue
            assert mine["model_info"][key] == value, (entry["model_name"], key)
    for attribute in ROUTER_ATTRIBUTES:
        assert setting_of(ours, attribute) == setting_of(theirs, attribute), attribute
    router.shutdown()


@pytest.mark.parametrize("name", LOADABLE)
def test_validate_reports_the_groups_the_proxy_serves(name: str) -> None:
    path = CORPUS / name
    result = CliRunner().invoke(app, ["validate", str(path), "--all"], terminal_width=400)
    assert result.exit_code == 0, result.output
    theirs = proxy_router(path)
    groups = list(dict.fromkeys(d["model_name"] for d in deployments_of(theirs)))
    deployments = len(deployments_of(theirs))
    assert f"{path}: {len(groups)} model groups, {deployments} deployments: valid" in result.output
    for group in groups:
        assert group in result.output


def test_names_with_slashes_and_wildcards_load_as_groups() -> None:
    config = load_router_config(CORPUS / "slash_names_and_wildcards.yaml")
    assert "together/llama-4-maverick" in config.groups
    assert "ollama/llama3.2:latest" in config.groups
    assert config.wildcard_groups() == ["openai/*", "anthropic/*", "team-a/*"]


def test_proxy_only_sections_are_named_in_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="costrouter"):
        load_router_config(CORPUS / "proxy_sections.yaml")
    sections = [r.getMessage() for r in caplog.records if "sections of LiteLLM's proxy server" in r.getMessage()]
    assert len(sections) == 1
    for section in ("x-shared-params", "general_settings", "environment_variables", "health_check", "files_settings"):
        assert section in sections[0]
    for section in ("guardrails", "mcp_servers", "credential_list"):
        assert section in sections[0]
    ignored = [r.getMessage() for r in caplog.records if "litellm_settings (line 27): ignored" in r.getMessage()]
    assert len(ignored) == 1
    assert "drop_params, request_timeout, callbacks, success_callback, cache" in ignored[0]


def test_a_deployment_without_order_among_ordered_ones_is_named() -> None:
    path = CORPUS / "proxy_sections.yaml"
    result = CliRunner().invoke(app, ["validate", str(path)], terminal_width=400)
    assert "note: model_list[0] (line 7): no order, while other deployments of 'chat' have one" in result.output
    config = load_router_config(path)
    assert [d.priority for d in config.groups["chat"].deployments] == [3, 2]


def test_router_settings_beyond_six_pass_through_and_validate_names_them() -> None:
    path = CORPUS / "router_settings_beyond_six.yaml"
    config = load_router_config(path)
    assert config.router.litellm_args["enable_pre_call_checks"] is True
    assert config.router.litellm_args["default_fallbacks"] == ["safe"]
    # The hold of a call to `small` covers every group a fallback of any kind can send it to.
    assert set(config.reachable_groups("small")) == {"small", "large-context", "safe"}
    result = CliRunner().invoke(app, ["validate", str(path)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "passed to LiteLLM's Router as written: stream_timeout, enable_pre_call_checks" in result.output
    assert "left out not_a_router_argument: not an argument of the installed LiteLLM's Router" in result.output
    assert "costrouter sets model_list (costrouter builds it from the groups)" in result.output


def test_custom_provider_map_is_registered_and_serves_calls() -> None:
    router = CostRouter.from_files(CORPUS / "custom_provider.yaml")
    assert "corpus-llm" in litellm.provider_list
    response = router.route_completion("house-model", MESSAGES, max_tokens=20)
    assert response.choices[0].message.content == "from the house model"
    router.shutdown()


def test_a_custom_handler_that_does_not_load_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n  - model_name: m\n    litellm_params: {model: nowhere-llm/m}\n"
        "litellm_settings:\n  custom_provider_map:\n"
        "    - {provider: nowhere-llm, custom_handler: no_such_module.handler}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"custom_provider_map\[0\].custom_handler: cannot load"):
        CostRouter.from_files(path)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code != 0
    assert "no_such_module.handler" in result.output


def test_a_file_without_model_list_gets_one_clear_problem() -> None:
    with pytest.raises(ConfigError) as error:
        load_router_config(CORPUS / "no_model_list.yaml")
    (problem,) = error.value.problems
    assert problem.location == "model_list"
    assert "lists none" in problem.reason
    assert "store_model_in_db" in problem.reason


def test_every_problem_of_a_proxy_file_at_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: a/one\n"
        "    litellm_params: {model: openai/a, timeout: -1}\n"
        "  - model_name: b/two\n"
        "    litellm_params: {model: openai/b, stream_timeout: -1}\n"
        "router_settings:\n"
        "  fallbacks: [{a/one: [c/three]}]\n"
        "  context_window_fallbacks: [{b/two: [d/four]}]\n"
        "  health_check_interval: 30\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_router_config(path)
    found = [(problem.line, problem.location) for problem in error.value.problems]
    assert found == [
        (3, "groups.a/one.deployments[0].timeout"),
        (5, "groups.b/two.deployments[0].stream_timeout"),
        (7, "groups.a/one.fallbacks[0]"),
        (8, "router.litellm_args.context_window_fallbacks[0].b/two"),
        (9, "router_settings.health_check_interval"),
    ]


# ---- a wildcard group, called through the provider double ------------------------------------
def _wildcard_router(provider: ProviderDouble, capture: TelemetryCapture, tmp_path: Path) -> CostRouter:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: openai/*\n"
        "    litellm_params:\n"
        "      model: openai/*\n"
        f"      api_base: {provider.base_url}\n"
        "      api_key: os.environ/CORPUS_API_KEY\n",
        encoding="utf-8",
    )
    budgets = {
        "store": {"backend": "memory"},
        "defaults": {"input_cost_per_token": 0.00002, "output_cost_per_token": 0.00004},
        "budgets": [{"scope": "session", "limit_usd": 5}],
    }
    config = load_router_config(path)
    return CostRouter(
        config,
        budgets=budgets,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
        source=str(path),
    )


@pytest.mark.parametrize(
    ("requested", "called"),
    [("openai/gpt-4o-mini", "gpt-4o-mini"), ("openai/gpt-4.1", "gpt-4.1"), ("openai/corpus-unlisted", None)],
)
def test_a_wildcard_group_routes_and_prices_the_model_called(
    provider: ProviderDouble, capture: TelemetryCapture, tmp_path: Path, requested: str, called: str | None
) -> None:
    provider.reset()
    provider.script(requested.removeprefix("openai/"), Reply(completion_tokens=8))
    router = _wildcard_router(provider, capture, tmp_path)
    router.route_completion(requested, MESSAGES, max_tokens=40, session_id="s-wild")
    (request,) = provider.requests
    assert request.model == requested.removeprefix("openai/")
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.completion/openai/*"
    assert attributes[sc.ROUTER_GROUP] == "openai/*"
    assert attributes[sc.GEN_AI_REQUEST_MODEL] == requested.removeprefix("openai/")
    prompt = count_prompt_tokens(MESSAGES)
    if called is not None:
        info = litellm.get_model_info(called)
        input_price, output_price = info["input_cost_per_token"], info["output_cost_per_token"]
    else:  # a model no price list knows: the policy's default price, never $0
        input_price, output_price = 0.00002, 0.00004
    # Settled in whole micro-dollars.
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(prompt * input_price + 8 * output_price, abs=1e-6)
    estimate = float(attributes[sc.BUDGET_ESTIMATE_USD])  # type: ignore[arg-type]
    assert estimate >= 40 * output_price + prompt * input_price
    # The hold is the bound of the model called, not of another model the pattern could reach.
    assert estimate < 40 * output_price * 4 + prompt * input_price * 4
    router.shutdown()


def test_the_wildcard_hold_follows_the_model_named(
    provider: ProviderDouble, capture: TelemetryCapture, tmp_path: Path
) -> None:
    provider.reset()
    router = _wildcard_router(provider, capture, tmp_path)
    router.route_completion("openai/gpt-4o-mini", MESSAGES, max_tokens=40, session_id="s-a")
    router.route_completion("openai/gpt-4.1", MESSAGES, max_tokens=40, session_id="s-b")
    cheap, dear = (float(s.attributes[sc.BUDGET_ESTIMATE_USD]) for s in capture.call_spans())  # type: ignore[index,arg-type]
    # gpt-4.1 costs about 13 times gpt-4o-mini: one pattern, two holds, each the named model's.
    assert dear > 10 * cheap
    assert cheap >= deployment_price_of("openai/gpt-4o-mini")
    assert dear >= deployment_price_of("openai/gpt-4.1")
    router.shutdown()


def deployment_price_of(model: str) -> float:
    price = deployment_price(Deployment(model=model))
    assert price is not None
    return price.upper_bound_usd(count_prompt_tokens(MESSAGES), 40)


def test_includes_are_merged_as_the_proxy_merges_them() -> None:
    config = load_router_config(CORPUS / "includes.yaml")
    assert list(config.groups) == ["fast", "capable", "local"]
    assert config.router.num_retries == 3  # a value of an included file replaces the includer's
    assert config.groups["fast"].fallbacks == ["capable"]


def test_a_problem_in_an_included_file_is_reported_at_its_own_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "models.yaml").write_text(
        "model_list:\n  - model_name: fast\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
        "  - model_name: broken\n    litellm_params: [not, a, mapping]\n",
        encoding="utf-8",
    )
    root = tmp_path / "config.yaml"
    root.write_text("include:\n  - parts/models.yaml\n  - parts/missing.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_router_config(root)
    text = str(caught.value)
    assert f"model_list[1].litellm_params ({tmp_path / 'parts' / 'models.yaml'} line 6)" in text
    assert "include (line 3): 'parts/missing.yaml': no such file next to config.yaml" in text
    result = CliRunner().invoke(app, ["validate", str(root)], terminal_width=400)
    assert result.exit_code == 1
    assert f"{tmp_path / 'parts' / 'models.yaml'}:6: model_list[1].litellm_params" in result.output
    assert f"{root}:3: include" in result.output


def test_an_include_circle_reads_each_file_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "include: [b.yaml]\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-4o-mini}\n",
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text(
        "include: [a.yaml]\nmodel_list:\n  - model_name: b\n    litellm_params: {model: openai/gpt-4o}\n",
        encoding="utf-8",
    )
    assert list(load_router_config(tmp_path / "a.yaml").groups) == ["a", "b"]


@pytest.mark.parametrize("alias", ["gpt-4", "hidden-gpt-4"])
def test_a_model_group_alias_routes_to_its_group_priced_and_held_as_that_group(
    provider: ProviderDouble, capture: TelemetryCapture, tmp_path: Path, alias: str
) -> None:
    provider.reset()
    provider.script("corpus-fast", Reply(completion_tokens=8))
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: fast\n"
        "    litellm_params:\n"
        "      model: openai/corpus-fast\n"
        f"      api_base: {provider.base_url}\n"
        "      api_key: os.environ/CORPUS_API_KEY\n"
        "      input_cost_per_token: 0.000001\n"
        "      output_cost_per_token: 0.000002\n"
        "router_settings:\n"
        "  model_group_alias:\n"
        "    gpt-4: fast\n"
        "    hidden-gpt-4: {model: fast, hidden: true}\n",
        encoding="utf-8",
    )
    router = CostRouter(
        load_router_config(path),
        budgets={"store": {"backend": "memory"}, "budgets": [{"scope": "session", "limit_usd": 5}]},
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
        source=str(path),
    )
    router.route_completion(alias, MESSAGES, max_tokens=40, session_id="s-alias")
    (request,) = provider.requests
    assert request.model == "corpus-fast"
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.completion/fast"
    assert attributes[sc.ROUTER_GROUP] == "fast"
    prompt = count_prompt_tokens(MESSAGES)
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(prompt * 1e-6 + 8 * 2e-6, abs=1e-6)
    assert float(attributes[sc.BUDGET_ESTIMATE_USD]) >= 40 * 2e-6  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown model group 'gpt-5'"):
        router.route_completion("gpt-5", MESSAGES, max_tokens=40, session_id="s-alias")
    router.shutdown()
