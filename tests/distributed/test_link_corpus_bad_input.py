"""link-corpus and bad input lines: a clean file:line message, or --skip-invalid.

The workers of a cluster return input errors instead of raising them, so
Dask logs no "Compute Failed" traceback: checked on a real process, whose
LocalCluster workers write to the same stderr.
"""

import json
import os
import subprocess
import sys
import tempfile

import pytest
from typer.testing import CliRunner

from entity_linker.cli import app
from entity_linker.distributed import (
    InputFormatError,
    PartitionStats,
    link_corpus,
    make_partitions,
    read_records,
)

pytest.importorskip("distributed")

BAD_LINES = ["not json", '{"id": 1}', '{"text": "x \\udcff"}']


def _write_bad(tmp_path, name="docs.jsonl", n_good=30):
    """n_good good records with the BAD_LINES at lines 3, 6 and 9; returns (path, bad lines)."""
    lines = [json.dumps({"id": i, "text": f"Paris and Berlin, number {i} ."})
             for i in range(n_good)]
    for number, bad in zip((3, 6, 9), BAD_LINES):
        lines.insert(number - 1, bad)
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode("utf8") + b"caf\xe9 in Paris\n")
    return path, [3, 6, 9, len(lines) + 1]


def test_read_records_counts_bad_lines_when_asked(tmp_path):
    path, bad = _write_bad(tmp_path)
    [partition] = make_partitions([path])
    with pytest.raises(InputFormatError, match=f"{path}:3: invalid JSON"):
        list(read_records(partition))
    stats = PartitionStats("x")
    records = list(read_records(partition, stats))
    assert [r["id"] for r in records] == list(range(30))
    assert stats.skipped == 4
    assert [e.split(": ")[0] for e in stats.skipped_examples] == [f"{path}:{n}" for n in bad]
    assert "lone surrogate" in stats.skipped_examples[2]
    assert "not valid UTF-8" in stats.skipped_examples[3]


def test_skip_invalid_in_process_and_on_a_cluster(client, pipeline_dir, tmp_path, outputs):
    path, bad = _write_bad(tmp_path)
    with pytest.raises(InputFormatError, match=f"{path}:3:"):
        link_corpus([path], tmp_path / "failed", pipeline_dir, client=client, progress=False)
    assert list((tmp_path / "failed").iterdir()) == []
    single = link_corpus([path], tmp_path / "single", pipeline_dir, progress=False,
                         skip_invalid=True)
    clustered = link_corpus([path], tmp_path / "cluster", pipeline_dir, client=client,
                            progress=False, skip_invalid=True, partition_size=7)
    for summary in (single, clustered):
        assert (summary.documents, summary.skipped) == (30, 4)
        assert [e.split(": ")[0] for e in summary.skipped_examples] == [
            f"{path}:{n}" for n in bad]
    assert [r["id"] for r in outputs(tmp_path / "single")["docs.jsonl"]] == list(range(30))
    assert ("invalid lines skipped", "4") in single.rows()


def _run(args):
    # cwd: not the source tree, whose uncompiled package would shadow the installed one.
    return subprocess.run([sys.executable, "-m", "entity_linker", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_COLOR": "1"}, cwd=tempfile.gettempdir())


def test_cli_bad_line_on_local_workers_gives_only_the_message(pipeline_dir, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "Paris ."}\n', encoding="utf8")
    path, _ = _write_bad(tmp_path)
    out = tmp_path / "out"
    result = _run(["link-corpus", good, path, "-o", out, "-p", pipeline_dir, "-n", "2",
                   "--no-progress"])
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Compute Failed" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"✘ {path}:3: invalid JSON (Expecting value: line 1 column 1 (char 0))."]
    assert result.stdout == ""
    assert not (out / "docs.jsonl").exists()

    result = _run(["link-corpus", path, "-o", out, "-p", pipeline_dir, "-n", "2",
                   "--no-progress", "--skip-invalid"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Skipped 4 invalid input line(s)" in result.stderr
    assert f"{path}:3:" in result.stderr and f"{path}:9:" in result.stderr
    assert "invalid lines skipped   4" in result.stdout
    assert len((out / "docs.jsonl").read_text(encoding="utf8").splitlines()) == 30


def test_cli_on_a_scheduler_skip_invalid(cluster, pipeline_dir, tmp_path):
    path, _ = _write_bad(tmp_path)
    args = ["link-corpus", str(path), "-o", str(tmp_path / "out"), "-p", str(pipeline_dir),
            "--scheduler", cluster.scheduler_address, "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert f"{path}:3: invalid JSON" in result.stderr and "Traceback" not in result.stderr
    result = CliRunner().invoke(app, [*args, "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "Skipped 4 invalid" in result.stderr and "30" in result.stdout


def test_cli_output_over_an_input_fails_cleanly(pipeline_dir, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "Paris ."}\n', encoding="utf8")
    result = CliRunner().invoke(app, ["link-corpus", str(path), "-o", str(tmp_path),
                                      "-p", str(pipeline_dir), "--no-progress"])
    assert result.exit_code == 1
    assert "would overwrite an input" in result.stderr
    assert not isinstance(result.exception, ValueError)
