"""Reference parity of the data builder, and its command line.

The oracle is Google's ``create_pretraining_data.py`` (bert-tensorflow 1.0.4), run in a
subprocess (its absl flags clash with others) that builds several settings in turn, so TensorFlow's
import is paid once per batch rather than once per setting. Records are compared by parsed values
(``tf.train.Example``), file by file and in order, never as bytes: the byte order of features
depends on the protobuf backend.

bert-tensorflow 1.0.4 predates upstream's ``--do_whole_word_mask``. For whole-word parity the
oracle is the same reference pipeline (reading, pairing, truncation, writing all Google's) with
its selection function replaced by the tests' own plain transcription of upstream's documented
whole-word rule (``masking_oracle.naive_reference``, through ``_WWM_DRIVER``).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO
from norbert import create_pretraining_data

SCRIPT = os.path.join(REPO, "scripts", "create_pretraining_data.py")

_DRIVER = textwrap.dedent(
    '''
    import json
    import sys
    sys.path.insert(0, %r)
    import bert.create_pretraining_data as ref
    import masking_oracle

    upstream_predictions = ref.create_masked_lm_predictions

    def whole_word_predictions(tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng):
        return masking_oracle.naive_reference(tokens, masked_lm_prob, max_predictions_per_seq,
                                              vocab_words, rng, True)

    # One job per setting, each from fresh flag defaults, as a command line of its own would be.
    for job in json.load(open(sys.argv[1])):
        ref.FLAGS.unparse_flags()
        ref.FLAGS([sys.argv[0]] + job["args"])
        ref.create_masked_lm_predictions = (
            whole_word_predictions if job["whole_word"] else upstream_predictions)
        ref.main(None)
    '''
    % os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def reference_job(inputs, outputs, vocab, whole_word=False, **flags):
    """One setting for ``run_references``: its command-line flags and whether it is whole-word."""
    args = [
        "--input_file=" + ",".join(inputs),
        "--output_file=" + ",".join(outputs),
        "--vocab_file=" + vocab,
    ] + ["--%s=%s" % kv for kv in sorted(flags.items())]
    return {"args": args, "whole_word": whole_word}


def run_references(workdir, jobs):
    """Runs the reference builder over ``jobs`` in turn, in one subprocess.

    Plain jobs run Google's selection; whole-word ones swap in ``masking_oracle``'s
    transcription of upstream's rule, the rest of the pipeline staying Google's.
    """
    driver = os.path.join(str(workdir), "reference_driver.py")
    with open(driver, "w") as f:
        f.write(_DRIVER)
    job_file = os.path.join(str(workdir), "reference_jobs.json")
    with open(job_file, "w") as f:
        json.dump(jobs, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, driver, job_file], cwd=str(workdir), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 0, done.stderr[-3000:]


def run_reference(workdir, inputs, outputs, vocab, whole_word=False, **flags):
    """Runs the reference builder on one setting in a subprocess; returns the output paths."""
    run_references(workdir, [reference_job(inputs, outputs, vocab, whole_word, **flags)])
    return outputs


def run_norbert(inputs, outputs, vocab, whole_word=False, **flags):
    from norbert.data.builder import DataConfig, create_pretraining_data

    config = DataConfig(
        input_file=",".join(inputs), output_file=",".join(outputs), vocab_file=vocab,
        do_whole_word_mask=whole_word, **flags
    )
    return create_pretraining_data(config)


def parsed_records(path):
    """Every record of a TFRecord file as ``{name: [values]}``, read and parsed by TensorFlow."""
    import tensorflow as tf

    out = []
    for record in tf.compat.v1.io.tf_record_iterator(path):
        example = tf.train.Example.FromString(record)
        out.append({
            name: list(f.int64_list.value) if f.HasField("int64_list") else list(f.float_list.value)
            for name, f in example.features.feature.items()
        })
    return out


def assert_same_records(ref_paths, our_paths):
    for ref_path, our_path in zip(ref_paths, our_paths):
        ref, ours = parsed_records(ref_path), parsed_records(our_path)
        assert len(ours) == len(ref), our_path
        for k, (a, b) in enumerate(zip(ref, ours)):
            assert a == b, "record %d of %s differs" % (k, os.path.basename(our_path))


# -- the corpus ------------------------------------------------------------------------------

_EDGE_CASES = (
    # A mid-line \\r (the reference's reader drops it), a CRLF line, a line of spaces and
    # U+00A0 (a document break after strip), a control-characters-only line (no tokens, no
    # break), a one-sentence document and a document whose one sentence is far over 512 tokens.
    "First line of an odd doc.\rGlued by the dropped CR.\r\n"
    "Second sentence here, with a \u00e9 and a \u4e2d\u6587 word.\n"
    " \u00a0 \n"
    "\x01\x02\n"
    "A lone sentence document.\n"
    "\n"
    + " ".join("word%d unaffable" % i for i in range(400)) + ".\n"
    "\n"
    "Last document, no newline at the end of the file"
)


@pytest.fixture(scope="session")
def small_corpus(corpus_paths, tmp_path_factory):
    """The first documents of each shared corpus file, plus a file of edge cases.

    The edge-case file does not end in a newline, so its last document runs on into the next
    file, as the reference reads it.
    """
    out = tmp_path_factory.mktemp("small_corpus")
    paths = []
    for path, n_docs in zip(corpus_paths, (40, 12, 8)):
        with open(path, encoding="utf-8") as f:
            docs = f.read().split("\n\n")[:n_docs]
        small = out / os.path.basename(path)
        small.write_text("\n\n".join(docs) + "\n\n", encoding="utf-8")
        paths.append(str(small))
    edge = out / "edge_cases.txt"
    edge.write_bytes(_EDGE_CASES.encode("utf-8"))
    return [str(edge)] + paths


_CASES = {
    # name: (flags, whole_word, number of output files)
    "seq128_seed12345": (dict(max_seq_length=128, dupe_factor=2, random_seed=12345), False, 1),
    "seq128_seed7_3files": (dict(max_seq_length=128, dupe_factor=1, random_seed=7), False, 3),
    "seq128_other_probs": (
        dict(max_seq_length=128, dupe_factor=1, random_seed=3, masked_lm_prob=0.2,
             max_predictions_per_seq=30, short_seq_prob=0.4), False, 1),
    "seq512_seed1": (dict(max_seq_length=512, max_predictions_per_seq=80, dupe_factor=1,
                          random_seed=1), False, 1),
    "wwm_seq128_seed12345": (dict(max_seq_length=128, dupe_factor=2, random_seed=12345), True, 1),
    "wwm_seq128_seed99_2files": (dict(max_seq_length=128, dupe_factor=1, random_seed=99), True, 2),
    "wwm_seq512_seed5": (dict(max_seq_length=512, max_predictions_per_seq=80, dupe_factor=1,
                              random_seed=5), True, 1),
}


# The one-document corpus: every 'random next' retries ten times, draws the reference makes.
_ONE_DOCUMENT = "\n".join(
    "Sentence number %d of the only document, told at length." % i for i in range(60))
_ONE_DOCUMENT_FLAGS = dict(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=3,
                           random_seed=11, short_seq_prob=0.5)


@pytest.fixture(scope="session")
def one_document_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("one_document") / "one.txt"
    path.write_text(_ONE_DOCUMENT, encoding="utf-8")
    return [str(path)]


@pytest.fixture(scope="session")
def reference_outputs(small_corpus, one_document_corpus, uncased_vocab_path, tmp_path_factory):
    """The reference's output paths per case: every case built once per test session, all in
    one subprocess (TensorFlow's import is most of a single case's time)."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("bert.create_pretraining_data")
    cases = dict(_CASES, one_document=(_ONE_DOCUMENT_FLAGS, False, 1))
    work = tmp_path_factory.mktemp("reference")
    outputs, jobs = {}, []
    for name, (flags, whole_word, n_files) in sorted(cases.items()):
        inputs = one_document_corpus if name == "one_document" else small_corpus
        outputs[name] = [str(work / ("%s-%d.tfrecord" % (name, i))) for i in range(n_files)]
        jobs.append(reference_job(inputs, outputs[name], uncased_vocab_path, whole_word, **flags))
    run_references(work, jobs)
    return outputs.__getitem__


@pytest.mark.parametrize("name", sorted(_CASES))
def test_records_match_the_reference(name, reference_outputs, small_corpus, uncased_vocab_path,
                                     tmp_path):
    flags, whole_word, n_files = _CASES[name]
    ref_paths = reference_outputs(name)
    ours = [str(tmp_path / ("ours-%d.tfrecord" % i)) for i in range(n_files)]
    summary = run_norbert(small_corpus, ours, uncased_vocab_path, whole_word=whole_word, **flags)
    assert summary.instances > 50
    assert_same_records(ref_paths, ours)


def test_the_script_matches_the_reference_and_never_imports_tensorflow(
    reference_outputs, small_corpus, uncased_vocab_path, tmp_path
):
    flags, _, n_files = _CASES["seq128_seed7_3files"]
    ref_paths = reference_outputs("seq128_seed7_3files")
    ours = [str(tmp_path / ("cli-%d.tfrecord" % i)) for i in range(n_files)]
    argv = [SCRIPT, "--input_file=" + ",".join(small_corpus), "--output_file=" + ",".join(ours),
            "--vocab_file=" + uncased_vocab_path] + ["--%s=%s" % kv for kv in flags.items()]
    # Runs the script as __main__ and reports whether TensorFlow got imported on the way.
    probe = (
        "import runpy, sys\n"
        "sys.argv = %r\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('TF_IMPORTED=%%s' %% ('tensorflow' in sys.modules))\n" % (argv,)
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TF_IMPORTED=False" in done.stdout
    assert "wrote " in done.stderr  # the closing summary line
    assert_same_records(ref_paths, ours)
    meta = json.loads(open(ours[1] + ".meta.json", encoding="utf-8").read())
    assert meta["settings"]["mode"] == "reference-exact"
    assert meta["instances_in_file"] == len(parsed_records(ours[1]))
    assert meta["counts"]["instances"] == sum(len(parsed_records(p)) for p in ours)


def test_one_document_corpus_matches_the_reference(reference_outputs, one_document_corpus,
                                                   uncased_vocab_path, tmp_path):
    """With one document every 'random next' retries ten times: draws the reference makes."""
    ref = reference_outputs("one_document")
    ours = [str(tmp_path / "ours.tfrecord")]
    run_norbert(one_document_corpus, ours, uncased_vocab_path, **_ONE_DOCUMENT_FLAGS)
    assert_same_records(ref, ours)


@pytest.mark.slow
@pytest.mark.parametrize("whole_word", [False, True])
def test_whole_corpus_matches_the_reference(whole_word, corpus_paths, uncased_vocab_path,
                                            tmp_path):
    pytest.importorskip("bert.create_pretraining_data")
    flags = dict(max_seq_length=128, dupe_factor=3, random_seed=2024)
    ref = run_reference(tmp_path, corpus_paths, [str(tmp_path / "ref.tfrecord")],
                        uncased_vocab_path, whole_word=whole_word, **flags)
    ours = [str(tmp_path / "ours.tfrecord")]
    run_norbert(corpus_paths, ours, uncased_vocab_path, whole_word=whole_word, **flags)
    assert_same_records(ref, ours)


def test_per_word_whole_word_masking_differs_and_says_so(small_corpus, uncased_vocab_path,
                                                         reference_outputs, tmp_path):
    flags, _, _ = _CASES["wwm_seq128_seed12345"]
    ours = [str(tmp_path / "per_word.tfrecord")]
    run_norbert(small_corpus, ours, uncased_vocab_path, whole_word=True,
                whole_word_mask_per_word=True, **flags)
    meta = json.loads(open(ours[0] + ".meta.json", encoding="utf-8").read())
    assert meta["settings"]["mode"] == "whole-word-per-word"
    ref = parsed_records(reference_outputs("wwm_seq128_seed12345")[0])
    mine = parsed_records(ours[0])
    assert len(mine) > 50
    assert mine != ref  # other draws from the first per-word choice on


# -- the command line: bad input is one line and exit status 2 --------------------------------


def _run_script(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)


@pytest.fixture
def tiny_inputs(tmp_path, make_vocab):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat .\nthe dog ran .\n\na cat ran .\nthe dog sat .\n",
                    encoding="utf-8")
    vocab = make_vocab(["the", "cat", "sat", "dog", "ran", "a", "."])
    return str(text), vocab


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--input_file={missing}"], "--input_file: no files match"),
        (["--vocab_file={tmp}/nope.txt"], "nope.txt"),
        (["--output_file={tmp}/text.txt/out.tfrecord"], "text.txt is a file, not a folder"),
        (["--max_predictions_per_seq=0"], "--max_predictions_per_seq must be positive"),
        (["--max_seq_length=4"], "--max_seq_length must be at least 5"),
        (["--masked_lm_prob=1.5"], "--masked_lm_prob"),
        (["--dupe_factor=0"], "--dupe_factor"),
        (["--whole_word_mask_per_word"], "--do_whole_word_mask"),
        (["--input_file="], "--input_file is required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(flags, expected, tiny_inputs, tmp_path):
    text, vocab = tiny_inputs
    out = str(tmp_path / "out.tfrecord")
    base = {"--input_file": text, "--output_file": out, "--vocab_file": vocab}
    for flag in flags:
        name, value = flag.split("=", 1) if "=" in flag else (flag, None)
        value = None if value is None else value.format(tmp=tmp_path, missing=tmp_path / "x*.txt")
        if value is None:
            base[name] = None
        else:
            base[name] = value
    args = [k if v is None else "%s=%s" % (k, v) for k, v in base.items()]
    done = _run_script(*args)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert lines and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not os.path.exists(out)
    assert not [p for p in os.listdir(str(tmp_path)) if ".tmp-" in p]


def test_unwritable_output_folder(tiny_inputs, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write to read-only folders")
    text, vocab = tiny_inputs
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        done = _run_script("--input_file=" + text, "--output_file=%s/out.tfrecord" % folder,
                           "--vocab_file=" + vocab)
    finally:
        folder.chmod(0o700)
    assert done.returncode == 2
    assert "not writable" in done.stderr


def test_empty_input_is_an_error(tmp_path, make_vocab):
    text = tmp_path / "blank.txt"
    text.write_text("\n\n  \n", encoding="utf-8")
    done = _run_script("--input_file=%s" % text, "--output_file=%s/o.tfrecord" % tmp_path,
                       "--vocab_file=" + make_vocab(["a"]))
    assert done.returncode == 2
    assert "holds no text" in done.stderr


def test_warnings_for_odd_settings(tiny_inputs, tmp_path):
    text, vocab = tiny_inputs
    done = _run_script("--input_file=" + text, "--output_file=%s/o.tfrecord" % tmp_path,
                       "--vocab_file=" + vocab, "--max_seq_length=100",
                       "--max_predictions_per_seq=5", "--dupe_factor=1")
    assert done.returncode == 0, done.stderr
    assert "caps masking" in done.stderr
    assert "not a multiple of 64" in done.stderr
    done = _run_script("--input_file=" + text, "--output_file=%s/o.tfrecord" % tmp_path,
                       "--vocab_file=" + vocab, "--max_predictions_per_seq=60",
                       "--dupe_factor=1")
    assert done.returncode == 0, done.stderr
    assert "mostly padding" in done.stderr


def test_sidecar_holds_settings_and_counts(tmp_path, make_vocab):
    import hashlib

    from norbert import DataConfig, create_pretraining_data

    text = tmp_path / "t.txt"
    text.write_bytes(b"the cat sat .\nthe dog \xff ran .\n\na cat ran .\nthe dog sat .\n")
    vocab = make_vocab(["the", "cat", "sat", "dog", "ran", "a", "."])
    out = str(tmp_path / "o.tfrecord")
    summary = create_pretraining_data(DataConfig(
        input_file=str(text), output_file=out, vocab_file=vocab, dupe_factor=3,
        max_seq_length=64, max_predictions_per_seq=10))
    meta = json.loads(open(out + ".meta.json", encoding="utf-8").read())
    settings = meta["settings"]
    assert settings["max_seq_length"] == 64 and settings["max_predictions_per_seq"] == 10
    assert settings["dupe_factor"] == 3 and settings["random_seed"] == 12345
    assert settings["do_lower_case"] is True and settings["do_whole_word_mask"] is False
    assert settings["vocab_size"] == 12
    assert settings["vocab_sha256"] == hashlib.sha256(open(vocab, "rb").read()).hexdigest()
    counts = meta["counts"]
    assert counts["bad_lines"] == 1 and counts["documents"] == 2
    assert counts["instances"] == summary.instances == meta["instances_in_file"] > 0
    assert counts["masked_tokens"] == summary.masked_tokens > 0
    assert meta["features"]["input_ids"] == {"dtype": "int64", "length": 64}
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        ["t.txt", "vocab.txt", "o.tfrecord", "o.tfrecord.meta.json"])


def test_missing_output_folders_are_made(tiny_inputs, tmp_path):
    text, vocab = tiny_inputs
    out = tmp_path / "new" / "folder" / "out.tfrecord"
    done = _run_script("--input_file=" + text, "--output_file=%s" % out, "--vocab_file=" + vocab,
                       "--dupe_factor=1")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(str(out.parent))) == ["out.tfrecord", "out.tfrecord.meta.json"]


@pytest.mark.parametrize("problem, expected", [
    ("missing_vocab", "--vocab_file: "),
    ("binary_vocab", "--vocab_file: "),
    ("empty_input", "holds no text"),
])
@pytest.mark.parametrize("sharded", [False, True])
def test_inputs_are_checked_before_outputs(problem, expected, sharded, tiny_inputs, tmp_path):
    """A bad input is named as such, even when the output folder does not exist yet, and the
    failed run leaves no folder behind."""
    text, vocab = tiny_inputs
    if problem == "missing_vocab":
        vocab = str(tmp_path / "no_vocab.txt")
    elif problem == "binary_vocab":
        vocab = str(tmp_path / "vocab.bin")
        with open(vocab, "wb") as f:
            f.write(bytes(range(256)) * 8)
    else:
        text = str(tmp_path / "empty.txt")
        open(text, "w").close()
    args = ["--input_file=" + text, "--output_file=%s/out/data/train.tfrecord" % tmp_path,
            "--vocab_file=" + vocab]
    done = _run_script(*(args + (["--num_output_shards=2"] if sharded else [])))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert lines and expected in lines[0] and "folder" not in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sharded", [False, True])
def test_vocab_with_byte_order_mark_and_windows_line_ends(sharded, tiny_inputs, tmp_path):
    """A vocab saved by a Windows editor (BOM, CRLF) gives the same records as the clean one."""
    text, vocab = tiny_inputs
    with open(vocab, encoding="utf-8") as f:
        tokens = f.read().split("\n")[:-1]
    windows = tmp_path / "vocab_windows.txt"
    windows.write_bytes(("\ufeff" + "\r\n".join(tokens) + "\r\n").encode("utf-8"))
    extra = {"num_output_shards": 2} if sharded else {}
    records = []
    for name, path in (("clean", vocab), ("windows", str(windows))):
        out = tmp_path / name / "train.tfrecord"
        create_pretraining_data(input_file=text, output_file=str(out), vocab_file=path,
                                dupe_factor=2, max_seq_length=16, max_predictions_per_seq=3,
                                progress=False, **extra)
        files = sorted(p for p in os.listdir(str(out.parent)) if not p.endswith(".json"))
        records.append([(out.parent / p).read_bytes() for p in files])
    assert records[0] == records[1] and all(records[0])
