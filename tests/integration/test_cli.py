"""The `costrouter` command, in process (typer's CliRunner) and as `python -m costrouter`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis.crc import key_slot
from typer.testing import CliRunner

from costrouter.budget import RedisBudgetStore, load_policy
from costrouter.budget.store import top_key
from costrouter.cli.commands import app
from costrouter.config.budget_ref import budget_key
from costrouter.money import usd_to_units

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SPAN_LINE = {
    "name": "router.completion/fast",
    "trace_id": "1" * 32,
    "span_id": "2" * 16,
    "parent_span_id": None,
    "kind": "CLIENT",
    "start_time_ns": 0,
    "end_time_ns": 5_000_000,
    "status": {"code": "UNSET", "description": None},
    "attributes": {
        "router.model_group": "fast",
        "router.served_model_group": "fast",
        "router.deployment_id": "fast-primary",
        "session.id": "s1",
        "user.id": "alice",
        "llm.usage.cost_usd": 0.000123,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 8,
    },
    "events": [],
    "resource": {},
    "scope": "costrouter",
}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("COSTROUTER_"):
            monkeypatch.delenv(name)
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- validate -------------------------------------------------------------------------------
def test_validate_prints_groups_priorities_fallbacks_prices_and_budgets(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSTROUTER_DEMO_API_BASE", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("COSTROUTER_DEMO_API_KEY", "sk-demo-value-never-printed")
    result = runner.invoke(app, ["validate", str(CONFIGS / "router.yaml"), str(CONFIGS / "budgets.yaml")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "5 model groups, 6 deployments: valid" in out
    assert out.index("fast-primary") < out.index("fast-backup")
    assert "fast → local" in out
    assert "$2.50" in out
    assert "$10.00" in out
    assert "team-research-monthly" in out
    assert "downgrade to fast" in out
    assert "os.environ/COSTROUTER_DEMO_API_KEY" in out
    assert "sk-demo-value-never-printed" not in result.output
    assert "127.0.0.1:1" not in result.output
    assert "\x1b[" not in result.output  # no colours into a pipe


def test_validate_shows_every_price_dimension_and_its_source(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "config.yaml",
        "model_list:\n"
        "  - model_name: g\n"
        "    litellm_params: {model: openai/gpt-4o-mini, input_cost_per_token: 0.000002}\n"
        "    model_info: {id: d, output_cost_per_token: 0.000008, input_cost_per_request: 0.01}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    cells = [[cell.strip() for cell in line.split("|")] for line in result.stdout.splitlines()]
    rows = {row[2]: " ".join(row) for row in cells if len(row) == 6 and row[2].endswith(("_token", "_cost", "request"))}
    assert "$2.00" in rows["input_cost_per_token"]
    assert "file: litellm_params" in rows["input_cost_per_token"]
    assert "file: model_info" in rows["output_cost_per_token"]
    assert "LiteLLM price map" in rows["cache_read_input_token_cost"]
    assert "rule: as output" in rows["output_cost_per_reasoning_token"]
    assert "$0.01" in rows["input_cost_per_request"]


def test_validate_refuses_an_input_price_without_an_output_price(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "router.yaml",
        "groups:\n  g:\n    deployments:\n      - model: openai/a\n        input_cost_per_token: 0.000001\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "output_cost_per_token" in result.output
    assert "prices_from_price_map" in result.output


def test_validate_masks_literal_secrets_and_userinfo(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "router.yaml",
        "groups:\n  g:\n    deployments:\n      - model: openai/a\n        api_key: sk-live-abc123\n"
        "        api_base: https://user:hunter2@example.com/v1\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "sk-live-abc123" not in result.output
    assert "hunter2" not in result.output
    assert "***" in result.stdout
    assert "https://user:***@example.com/v1" in result.stdout


def test_missing_secret_is_a_warning_unless_strict(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSTROUTER_DEMO_API_KEY", raising=False)
    monkeypatch.setenv("COSTROUTER_DEMO_API_BASE", "http://127.0.0.1:1/v1")
    router = str(CONFIGS / "router.yaml")
    relaxed = runner.invoke(app, ["validate", router])
    assert relaxed.exit_code == 0
    assert "warning:" in relaxed.stderr
    assert "groups.fast.deployments[0].api_key: environment variable COSTROUTER_DEMO_API_KEY is not set" in (
        relaxed.stderr
    )
    strict = runner.invoke(app, ["validate", router, "--strict"])
    assert strict.exit_code == 1
    assert "error:" in strict.stderr


ROUTER_OK = "groups:\n  fast:\n    deployments:\n      - model: openai/a\n"

MALFORMED = [
    pytest.param("router.yaml", "groups:\n  fast: [unclosed\n", None, ":3: malformed YAML", id="malformed-yaml"),
    pytest.param(
        "router.yaml",
        ROUTER_OK + "        pirce: 3\n",
        None,
        ":5: groups.fast.deployments[0].pirce: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        "router.yaml",
        ROUTER_OK + "    fallbacks: [nowhere]\n",
        None,
        "unknown fallback target 'nowhere'",
        id="unknown-fallback",
    ),
    pytest.param(
        "router.yaml",
        ROUTER_OK + "        priority: first\n",
        None,
        ":5: groups.fast.deployments[0].priority: Input should be a valid integer",
        id="bad-priority",
    ),
    pytest.param(
        "budgets.yaml",
        "budgets:\n  - scope: session\n    limit_usd: 1\n    window: fortnightly\n",
        ROUTER_OK,
        ":4: budgets[0].window: Value error, window must be",
        id="bad-budget-window",
    ),
    pytest.param(
        "budgets.yaml",
        "budgets:\n  - scope: user\n    limit_usd: 1\n    on_exceeded: downgrade\n    downgrade_to: cheap\n",
        ROUTER_OK,
        "budgets[0].downgrade_to: unknown model group 'cheap'",
        id="downgrade-to-unknown-group",
    ),
    pytest.param("absent.yaml", None, None, "cannot read file", id="missing-file"),
]


@pytest.mark.parametrize(("name", "text", "router_text", "expected"), MALFORMED)
def test_malformed_files_name_file_line_field_and_reason(
    runner: CliRunner, tmp_path: Path, name: str, text: str | None, router_text: str | None, expected: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    arguments = ["validate", str(path)]
    if router_text is not None:
        arguments = ["validate", str(write(tmp_path, "ok-router.yaml", router_text)), str(path)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 1, result.output
    assert f"invalid configuration in {path}" in result.stderr
    assert f"{path}" in result.stderr
    assert expected in result.stderr
    assert result.stdout == ""


def test_malformed_file_as_a_subprocess(tmp_path: Path) -> None:
    path = write(tmp_path, "router.yaml", ROUTER_OK + "        pirce: 3\n")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-m", "costrouter", "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert f"{path}:5: groups.fast.deployments[0].pirce: unknown key" in done.stderr
    assert done.stdout == ""


def test_usage_errors_exit_2(runner: CliRunner) -> None:
    assert runner.invoke(app, ["report"]).exit_code == 2
    assert runner.invoke(app, ["validate", "--no-such-option"]).exit_code == 2
    assert runner.invoke(app, ["demo", "--exporter", "carrier-pigeon"]).exit_code == 2


@pytest.mark.parametrize(
    "command",
    [[], ["validate"], ["demo"], ["report"], ["budget"], ["budget", "status"], ["budget", "reset"], ["budget", "top"]],
)
def test_help_everywhere_with_examples(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.stdout
    if command:
        assert "Example" in result.stdout


# ---- report ---------------------------------------------------------------------------------
@pytest.fixture
def span_file(tmp_path: Path) -> Path:
    second = {**SPAN_LINE, "span_id": "3" * 16, "attributes": {**SPAN_LINE["attributes"], "session.id": "s2"}}
    return write(tmp_path, "spans.jsonl", json.dumps(SPAN_LINE) + "\n" + json.dumps(second) + "\n")


def test_report_table_csv_and_json(runner: CliRunner, span_file: Path) -> None:
    table = runner.invoke(app, ["report", str(span_file)])
    assert table.exit_code == 0, table.output
    for heading in ("Cost by group", "Cost by deployment", "Cost by session", "Cost by user"):
        assert heading in table.stdout
    assert "$0.000246" in table.stdout
    as_json = runner.invoke(app, ["report", str(span_file), "--format", "json", "--by", "session"])
    document = json.loads(as_json.stdout)
    assert [row["session"] for row in document["breakdowns"]["session"]] == ["s1", "s2"]
    assert document["total"]["input_tokens"] == 24
    as_csv = runner.invoke(app, ["report", str(span_file), "-f", "csv", "--by", "group+user"])
    lines = as_csv.stdout.splitlines()
    assert lines[0].startswith("by,group,requested,deployment,session,user,team,tag,model,operation,calls")
    assert lines[1].startswith("group+user,fast,,,,alice,,,,,2,")
    assert lines[-1].startswith("total,")


def test_report_errors(runner: CliRunner, tmp_path: Path, span_file: Path) -> None:
    missing = runner.invoke(app, ["report", str(tmp_path / "absent.jsonl")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr
    broken = runner.invoke(app, ["report", str(write(tmp_path, "bad.jsonl", json.dumps(SPAN_LINE) + "\n[oops\n"))])
    assert broken.exit_code == 0  # a bad line is skipped, named and counted
    assert "bad.jsonl:2: not a JSON span record" in broken.stderr
    assert "skipped 1 of 2 lines" in broken.stderr
    nothing = runner.invoke(app, ["report", str(write(tmp_path, "text.jsonl", "hello\nworld\n"))])
    assert nothing.exit_code == 1
    assert "not a span file: none of its 2 lines is a span record" in nothing.stderr
    bad_by = runner.invoke(app, ["report", str(span_file), "--by", "colour"])
    assert bad_by.exit_code == 2
    assert "unknown dimension 'colour'" in bad_by.stderr


# ---- budget ---------------------------------------------------------------------------------
def test_budget_commands_on_the_memory_store_say_so(runner: CliRunner) -> None:
    budgets = str(CONFIGS / "budgets.yaml")
    for command in (["status", "session", "s1"], ["top", "user"], ["reset", "session", "s1", "--yes"]):
        result = runner.invoke(app, ["budget", *command, "--budgets", budgets])
        assert result.exit_code == 4, result.output
        assert "in-process memory store" in result.stderr


def test_budget_store_unavailable(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "budget",
            "status",
            "session",
            "s1",
            "--budgets",
            str(CONFIGS / "budgets.yaml"),
            "--redis",
            "redis://127.0.0.1:1/0",
        ],
    )
    assert result.exit_code == 3, result.output
    assert "budget store unavailable" in result.stderr


def test_budget_usage_errors(runner: CliRunner) -> None:
    budgets = str(CONFIGS / "budgets.yaml")
    assert runner.invoke(app, ["budget", "status", "planet", "x", "--budgets", budgets]).exit_code == 2
    no_id = runner.invoke(app, ["budget", "status", "session", "--budgets", budgets, "--redis", "redis://127.0.0.1:1"])
    assert no_id.exit_code == 2
    assert runner.invoke(app, ["budget", "top", "global", "--budgets", budgets]).exit_code == 1


@pytest.mark.parametrize("top_index", [False, True], ids=["top-scan", "top-index"])
@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
def test_budget_status_top_and_reset_against_redis(
    runner: CliRunner, tmp_path: Path, request: pytest.FixtureRequest, kind: str, top_index: bool
) -> None:
    redis_url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
    prefix = f"cli-test-{os.getpid()}-{int(top_index)}"
    cluster = "  cluster: true\n" if kind == "redis-cluster" else ""
    cluster += "  top_index: true\n" if top_index else ""
    budgets = write(
        tmp_path,
        "budgets.yaml",
        f"store:\n  backend: redis\n  redis_url: {redis_url}\n  key_prefix: {prefix}\n{cluster}"
        "budgets:\n  - scope: session\n    limit_usd: 1\n  - scope: global\n    limit_usd: 100\n",
    )
    policy = load_policy(budgets)
    session_budget = policy.budgets[0]
    slots = {key_slot(budget_key(prefix, session_budget.ref(session)).encode()) for session in ("s1", "s2")}
    slots.add(key_slot(top_key(prefix, session_budget.ref("s1")).encode()))
    assert len(slots) == 3  # two budgets and the top index: three slots, on a cluster maybe three nodes
    with RedisBudgetStore(policy.store) as store:
        for session, amount in (("s1", 0.25), ("s2", 0.5)):
            ref = session_budget.ref(session)
            store.reserve(ref, f"call-{session}", usd_to_units(amount), enforce=True)
            store.settle(ref, f"call-{session}", usd_to_units(amount))

    status = runner.invoke(app, ["budget", "status", "session", "s1", "--budgets", str(budgets)])
    assert status.exit_code == 0, status.output
    assert "$0.250000" in status.stdout
    assert "25.0%" in status.stdout
    assert "figures can lag" in status.stdout  # leases, the default, carry settled spend in the background
    assert "within 1 s" in status.stdout

    top = runner.invoke(app, ["budget", "top", "session", "-n", "5", "--budgets", str(budgets)])
    assert top.exit_code == 0, top.output
    assert top.stdout.index("s2") < top.stdout.index("s1")
    # No top index by default: built on demand, and the output says what it read.
    assert ("scanned 2 window keys" in top.stdout) is not top_index

    declined = runner.invoke(app, ["budget", "reset", "session", "s1", "--budgets", str(budgets)], input="n\n")
    assert declined.exit_code == 1
    reset = runner.invoke(app, ["budget", "reset", "session", "s1", "--budgets", str(budgets)], input="y\n")
    assert reset.exit_code == 0, reset.output
    after = runner.invoke(app, ["budget", "status", "session", "s1", "--budgets", str(budgets)])
    assert "0.0%" in after.stdout
    top_after = runner.invoke(app, ["budget", "top", "session", "--budgets", str(budgets)])
    assert "s2" in top_after.stdout
    assert "s1" not in top_after.stdout


def test_report_reads_a_collector_file_exporter_output(runner: CliRunner, tmp_path: Path) -> None:
    def value(item: object) -> dict[str, object]:
        if isinstance(item, float):
            return {"doubleValue": item}
        if isinstance(item, int):
            return {"intValue": str(item)}
        return {"stringValue": str(item)}

    span = {
        "traceId": "1" * 32,
        "spanId": "2" * 16,
        "name": SPAN_LINE["name"],
        "kind": 3,
        "startTimeUnixNano": "0",
        "endTimeUnixNano": "5000000",
        "attributes": [{"key": k, "value": value(v)} for k, v in SPAN_LINE["attributes"].items()],  # type: ignore[union-attr]
        "status": {},
    }
    document = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "costrouter"}, "spans": [span]}]}]}
    path = tmp_path / "collector-traces.json"
    path.write_text(json.dumps(document) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(path), "--format", "json", "--by", "user"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["breakdowns"]["user"][0]["user"] == "alice"
    assert report["total"]["input_tokens"] == 12
