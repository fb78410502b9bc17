"""`costrouter validate` on a large fallback ring: short chains, the first groups, a count of the rest."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from costrouter.cli.commands import app


def ring(path: Path, size: int) -> Path:
    lines = ["groups:"]
    for index in range(size):
        lines += [
            f"  g{index}:",
            "    deployments:",
            f"      - model: openai/m{index}",
            "        input_cost_per_token: 0.000001",
            "        output_cost_per_token: 0.000002",
            f"    fallbacks: [g{(index + 1) % size}]",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_ring_lists_fifty_groups_with_short_chains(tmp_path: Path) -> None:
    path = ring(tmp_path / "ring.yaml", 120)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "120 model groups, 120 deployments: valid" in result.stdout
    assert "g1 → g2 → g3 → g4 → …" in result.stdout
    assert "… and 70 more model groups, all valid (--all lists them)" in result.stdout
    assert "g119-0" not in result.stdout
    everything = CliRunner().invoke(app, ["validate", str(path), "--all"])
    assert "g119-0" in everything.stdout
    assert "g0 → g1 → g2 → g3 → …" in everything.stdout
    assert "more model groups" not in everything.stdout
