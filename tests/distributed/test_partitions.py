"""Inputs, partitions, records and atomic output of corpus linking (in one process)."""

import json

import pytest

from entity_linker.distributed import (
    InputFormatError,
    expand_inputs,
    link_corpus,
    make_partitions,
    read_records,
)


def _all_records(partitions):
    return [record for partition in partitions for record in read_records(partition)]


def test_expand_inputs_takes_files_globs_and_folders_once_each(write_corpus):
    a, sub_a, b = write_corpus()
    root = a.parent
    files = expand_inputs([str(root / "*.txt"), root, str(root / "**" / "*.txt"), b])
    assert files == [a.resolve(), b.resolve(), sub_a.resolve()]


def test_expand_inputs_missing_pattern_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        expand_inputs([str(tmp_path / "nothing-here*.txt")])


@pytest.mark.parametrize("size", [1, 7, 20, 59, 60, 61, 1000])
def test_partitions_of_n_lines_cover_the_file_exactly_once(write_corpus, size):
    a, sub_a, b = write_corpus()
    whole = _all_records(make_partitions([a, sub_a, b]))
    parts = make_partitions([a, sub_a, b], partition_size=size)
    assert _all_records(parts) == whole
    per_file = {}
    for part in parts:
        per_file.setdefault(part.path, []).append(part)
    # a.txt has 60 lines, sub/a.txt 25 (no final newline), b.jsonl 40.
    for path, n_lines in ((a, 60), (sub_a, 25), (b, 40)):
        assert len(per_file[str(path)]) == -(-n_lines // size)
    names = [part.output_name for part in parts]
    assert len(set(names)) == len(names)


def test_text_records_skip_blank_lines_and_jsonl_records_keep_fields(write_corpus):
    a, _, b = write_corpus()
    [text_part, jsonl_part] = make_partitions([a, b])
    texts = list(read_records(text_part))
    assert len(texts) == 59 and all(set(r) == {"text"} and r["text"] for r in texts)
    records = list(read_records(jsonl_part))
    assert records[3]["id"] == "b3" and records[3]["source"] == "test"


@pytest.mark.parametrize("line,problem", [
    ('{"id": 1}', 'a JSON object with a "text"'),
    ('["text"]', 'a JSON object with a "text"'),
    ('{"text": 3}', 'a JSON object with a "text"'),
    ('{"text": "x"', "invalid JSON"),
])
def test_bad_jsonl_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n", encoding="utf8")
    [partition] = make_partitions([path])
    with pytest.raises(InputFormatError) as caught:
        list(read_records(partition))
    assert f"{path}:3:" in str(caught.value) and problem in str(caught.value)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputFormatError, match=r"latin1.txt:2: not valid UTF-8"):
        list(read_records(make_partitions([path])[0]))


def test_failed_partition_leaves_no_output_and_no_temporary_file(pipeline_dir, tmp_path):
    path = tmp_path / "docs.jsonl"
    good = "".join(json.dumps({"text": f"Paris number {i} ."}) + "\n" for i in range(50))
    path.write_text(good + "not json\n", encoding="utf8")
    out = tmp_path / "out"
    with pytest.raises(InputFormatError, match="docs.jsonl:51"):
        link_corpus([path], out, pipeline_dir, batch_size=4, progress=False)
    assert list(out.iterdir()) == []


def test_output_over_an_input_file_is_refused(pipeline_dir, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "Paris ."}\n', encoding="utf8")
    with pytest.raises(ValueError, match="would overwrite an input"):
        link_corpus([path], tmp_path, pipeline_dir, progress=False)
    assert path.read_text(encoding="utf8") == '{"text": "Paris ."}\n'


def test_overwrite_links_finished_partitions_again(pipeline_dir, write_corpus, tmp_path):
    files = write_corpus()
    out = tmp_path / "out"
    link_corpus(files, out, pipeline_dir, progress=False)
    (out / "b.jsonl").write_text("stale\n", encoding="utf8")
    skipped = link_corpus(files, out, pipeline_dir, progress=False)
    assert skipped.partitions == 0
    assert (out / "b.jsonl").read_text(encoding="utf8") == "stale\n"
    again = link_corpus(files, out, pipeline_dir, overwrite=True, progress=False)
    assert (again.partitions, again.documents) == (3, 124)
    assert len((out / "b.jsonl").read_text(encoding="utf8").splitlines()) == 40


def test_client_and_processes_together_are_refused(pipeline_dir, write_corpus, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        link_corpus(write_corpus(), tmp_path / "out", pipeline_dir, client=object(),
                    processes=2)
