"""link_corpus on a LocalCluster of 2 worker processes (one cluster for the module)."""

import json
import os
import textwrap

import pytest
from spacy.util import import_file
from typer.testing import CliRunner

from entity_linker.cli import app
from entity_linker.distributed import (
    KBNotFoundError,
    PipelineNotFoundError,
    link_corpus,
    worker_state,
)

pytest.importorskip("distributed")

KILL_TRIGGER = "KILLSWITCH"
# A component that SIGKILLs its own Dask worker process the first time it sees
# the trigger text (the marker file makes it once per test, across processes).
KILL_CODE = textwrap.dedent('''
    import os
    import signal
    from pathlib import Path

    from spacy.language import Language


    @Language.factory("corpus_test_kill_once", default_config={"marker": "", "trigger": ""})
    def make_kill_once(nlp, name, marker, trigger):
        def kill_once(doc):
            if trigger and trigger in doc.text and not Path(marker).exists():
                try:
                    from distributed import get_worker

                    get_worker()
                except (ImportError, ValueError):
                    return doc  # never kill a process that is not a Dask worker
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return doc

        return kill_once
''')


def test_cluster_output_equals_single_process_output(
    client, pipeline_dir, write_corpus, tmp_path, outputs
):
    files = write_corpus()
    single = link_corpus(files, tmp_path / "single", pipeline_dir, batch_size=8,
                         progress=False)
    clustered = link_corpus(files, tmp_path / "cluster", pipeline_dir, client=client,
                            batch_size=8, progress=False)
    expected = outputs(tmp_path / "single")
    # Both a.txt files get their folder's name: their stems clash.
    assert sorted(expected) == ["b.jsonl", "corpus0_a.jsonl", "sub_a.jsonl"]
    assert [len(expected[name]) for name in ("corpus0_a.jsonl", "sub_a.jsonl", "b.jsonl")] == [
        59, 25, 40]
    for name in expected:
        assert (tmp_path / "cluster" / name).read_bytes() == (
            tmp_path / "single" / name).read_bytes()
    assert clustered.workers == 2
    assert clustered.documents == single.documents == 124
    assert (clustered.mentions, clustered.linked, clustered.nil) == (
        single.mentions, single.linked, single.nil)
    assert clustered.linked > 0 and clustered.nil > 0
    # Both workers did some of the work.
    assert len({stats.worker for stats in clustered.partition_stats}) == 2


def test_records_keep_their_fields_and_get_ents(client, pipeline_dir, write_corpus, tmp_path,
                                                outputs):
    files = write_corpus(seed=1)
    link_corpus(files, tmp_path / "out", pipeline_dir, client=client, progress=False)
    records = outputs(tmp_path / "out")["b.jsonl"]
    assert [r["id"] for r in records] == [f"b{i}" for i in range(40)]
    assert all(r["source"] == "test" for r in records)
    ents = [ent for r in records for ent in r["ents"]]
    assert ents
    for record in records:
        for ent in record["ents"]:
            assert set(ent) == {"start", "end", "text", "label", "kb_id", "score"}
            assert record["text"][ent["start"]:ent["end"]] == ent["text"]
            if ent["text"] in ("Atlantis", "Eldorado"):
                assert ent["kb_id"] == "NIL"
            elif ent["text"] == "Berlin":
                assert ent["kb_id"] == "QB" and ent["score"] == pytest.approx(1.0)


def test_each_worker_loads_the_pipeline_once(client, copy_pipeline, write_corpus, tmp_path):
    pipeline = copy_pipeline("loaded_once")
    link_corpus(write_corpus(), tmp_path / "out", pipeline, client=client, partition_size=10,
                progress=False)
    states = client.run(worker_state)
    loads = [path for state in states.values() for path, _ in state["loads"]
             if path == str(pipeline.resolve())]
    # 11 partitions on 2 workers, but at most one load per worker process.
    assert 1 <= len(loads) <= 2
    for state in states.values():
        assert [path for path, _ in state["loads"]].count(str(pipeline.resolve())) <= 1


def test_rerun_skips_finished_partitions(client, pipeline_dir, write_corpus, tmp_path):
    files = write_corpus()
    out = tmp_path / "out"
    first = link_corpus(files, out, pipeline_dir, client=client, partition_size=20,
                        progress=False)
    assert (first.partitions, first.partitions_skipped) == (7, 0)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*.jsonl")}
    assert len(before) == 7
    removed = out / "b-00001.jsonl"
    removed.unlink()

    second = link_corpus(files, out, pipeline_dir, client=client, partition_size=20,
                         progress=False)
    assert (second.partitions, second.partitions_skipped) == (1, 6)
    assert second.documents == 20
    for path in out.glob("*.jsonl"):
        mtime, content = before[path.name]
        assert path.read_bytes() == content
        if path != removed:
            assert path.stat().st_mtime_ns == mtime  # not rewritten

    third = link_corpus(files, out, pipeline_dir, client=client, partition_size=20,
                        progress=False)
    assert (third.partitions, third.partitions_skipped, third.documents) == (0, 7, 0)


def test_worker_killed_mid_partition_gives_complete_output_without_duplicates(
    client, pipeline_dir, write_corpus, tmp_path, outputs
):
    code = tmp_path / "kill_once.py"
    code.write_text(KILL_CODE, encoding="utf8")
    import_file("corpus_test_kill_once_code", code)
    from spacy import load

    marker = tmp_path / "killed.pid"
    nlp = load(pipeline_dir)
    nlp.add_pipe("corpus_test_kill_once",
                 config={"marker": str(marker), "trigger": KILL_TRIGGER})
    killer_pipeline = tmp_path / "killer_pipeline"
    nlp.to_disk(killer_pipeline)
    files = write_corpus(special=f"Paris {KILL_TRIGGER} near Berlin .")
    pids_before = {state["pid"] for state in client.run(worker_state).values()}

    # batch_size 4: the worker dies with b.jsonl half written to its temporary file.
    summary = link_corpus(files, tmp_path / "out", killer_pipeline, client=client,
                          batch_size=4, code=code, progress=False)
    assert marker.exists(), "the kill component never ran"
    assert int(marker.read_text()) in pids_before  # a worker really died
    link_corpus(files, tmp_path / "reference", pipeline_dir, batch_size=4, progress=False)
    got, expected = outputs(tmp_path / "out"), outputs(tmp_path / "reference")
    assert got == expected
    assert [r["id"] for r in got["b.jsonl"]] == [f"b{i}" for i in range(40)]
    assert summary.documents == 124
    assert not [p.name for p in (tmp_path / "out").iterdir() if not p.name.endswith(".jsonl")]
    client.wait_for_workers(2, timeout=60)


def test_missing_kb_on_worker_raises_clear_error(client, copy_pipeline, write_corpus,
                                                 tmp_path):
    pipeline = copy_pipeline("no_kb")
    kb_file = pipeline / "nel" / "kb" / "kb.bin"
    kb_file.unlink()
    with pytest.raises(KBNotFoundError) as caught:
        link_corpus(write_corpus(), tmp_path / "out", pipeline, client=client, progress=False)
    message = str(caught.value)
    assert message.startswith("Worker tcp://")  # raised on a worker, not by the driver
    assert str(kb_file) in message
    assert "copy" in message and "share" in message
    assert not list((tmp_path / "out").iterdir())


def test_missing_pipeline_on_worker_raises_clear_error(client, write_corpus, tmp_path):
    missing = tmp_path / "nowhere" / "pipeline"
    with pytest.raises(PipelineNotFoundError, match="no pipeline at .*nowhere"):
        link_corpus(write_corpus(), tmp_path / "out", missing, client=client, progress=False)


def test_cli_links_on_an_existing_scheduler(cluster, pipeline_dir, write_corpus, tmp_path,
                                            outputs):
    files = write_corpus()
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "link-corpus", *map(str, files), "--output", str(out), "--pipeline", str(pipeline_dir),
        "--scheduler", cluster.scheduler_address, "--batch-size", "8", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "124" in result.output and "docs/s" in result.output
    assert sum(len(lines) for lines in outputs(out).values()) == 124
    again = CliRunner().invoke(app, [
        "link-corpus", *map(str, files), "-o", str(out), "-p", str(pipeline_dir),
        "--scheduler", cluster.scheduler_address, "--no-progress",
    ])
    assert again.exit_code == 0 and "Nothing to do" in again.output


def test_cli_missing_kb_fails_with_the_path(cluster, copy_pipeline, write_corpus, tmp_path):
    pipeline = copy_pipeline("cli_no_kb")
    os.remove(pipeline / "nel" / "kb" / "kb.bin")
    result = CliRunner().invoke(app, [
        "link-corpus", *map(str, write_corpus()), "-o", str(tmp_path / "out"),
        "-p", str(pipeline), "--scheduler", cluster.scheduler_address, "--no-progress",
    ])
    assert result.exit_code == 1
    assert "kb.bin" in result.output and "does not exist" in result.output


def test_summary_counts_match_the_output_files(client, pipeline_dir, write_corpus, tmp_path,
                                               outputs):
    summary = link_corpus(write_corpus(seed=2), tmp_path / "out", pipeline_dir, client=client,
                          partition_size=15, progress=False)
    lines = [r for rs in outputs(tmp_path / "out").values() for r in rs]
    ents = [e for r in lines for e in r["ents"]]
    assert summary.documents == len(lines) == 124
    assert summary.mentions == len(ents)
    assert summary.linked == sum(e["kb_id"] != "NIL" for e in ents)
    assert summary.nil == summary.mentions - summary.linked > 0
    assert summary.docs_per_second > 0
    assert json.loads(json.dumps(summary.rows()))  # printable
