"""Plain helpers for the tests (fixtures live in conftest.py): paths, the real text to test on,
a tiny model's config, records from English text, the benchmarks as modules.

The real text: the small files shipped in tests/text (English, Norwegian Bokmål, Chinese +
Russian, written for these tests), and the larger shared corpora beside the checkout
(../shared/data) when they are there. Tests pick a file by its language (``corpus_file``), so
that they run in any clone and on the larger text when it is present.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))  # tests/
REPO = os.path.dirname(HERE)
DATA_DIR = os.path.join(os.path.dirname(REPO), "shared", "data")
TEXT_DIR = os.path.join(HERE, "text")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LANGUAGES = ("english", "norwegian", "zh_ru")  # in every file's name, shared or shipped
# Documents (blank-line separated) per text file, counted once by hand: the builders'
# counts are checked against these.
DOCUMENTS = {"ewt_english_docs.txt": 587, "ud_norwegian_dev.txt": 173, "ud_zh_ru_dev.txt": 49,
             "english.txt": 25, "norwegian.txt": 24, "zh_ru.txt": 11}


def _texts(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".txt"))


def shared_corpus_files():
    """The shared real-text corpora (English, Norwegian, Chinese + Russian), if present."""
    return _texts(DATA_DIR)


def corpus_files():
    """The real text to test on: the shared corpora when present, then the shipped files
    (each in the order english, norwegian, zh_ru)."""
    return shared_corpus_files() + _texts(TEXT_DIR)


def has_shared_corpora(paths=None):
    """Whether ``paths`` (default: every corpus file) include the shared corpora: tests whose
    figures are sizes of that larger text check them only then."""
    return any(os.path.dirname(p) == DATA_DIR for p in (corpus_files() if paths is None else paths))


SHARED_BYTES = 1_155_195  # the three shared corpora's text (ewt_english_docs.txt and the others)


def scaled(figure, paths=None):
    """A lower bound measured on the shared corpora (``figure``: lines, tokens, documents,
    blocks), when they are among ``paths`` (default: every corpus file); else the same share
    of the shipped text's bytes, at least 1: what a test that checks it saw enough text
    expects of the smaller text."""
    paths = corpus_files() if paths is None else paths
    if has_shared_corpora(paths):
        return figure
    return max(1, int(figure * sum(os.path.getsize(p) for p in paths) / SHARED_BYTES))


def corpus_file(language, paths=None):
    """The first file of ``paths`` (default: every corpus file) in ``language`` (one of
    LANGUAGES): the shared corpus's when present, else the shipped one."""
    assert language in LANGUAGES, language
    found = [p for p in (corpus_files() if paths is None else paths)
             if language in os.path.basename(p)]
    assert found, "no %s text among %s" % (language, paths)
    return found[0]


def tiny_bert_config(**changes) -> str:
    """The text of a small bert_config.json (Google's keys); ``changes`` override fields."""
    values = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, max_position_embeddings=64,
                  type_vocab_size=2, initializer_range=0.02)
    values.update(changes)
    return json.dumps(values)


def english_records(root, corpus_paths, vocab_path, nbytes, **data_settings):
    """``root``/train.tfrecord from the whole documents in the English corpus's first bytes."""
    from norbert.data.builder import create_pretraining_data

    with open(corpus_file("english", corpus_paths), "rb") as f:
        text = f.read(nbytes).rsplit(b"\n\n", 1)[0]
    (root / "text.txt").write_bytes(text)
    create_pretraining_data(input_file=str(root / "text.txt"),
                            output_file=str(root / "train.tfrecord"), vocab_file=vocab_path,
                            **data_settings)


def load_benchmark(name):
    """benchmarks/<name>.py as a module (its ``common`` helpers importable), for slow tests
    that run a benchmark's experiment and assert on its figures. The benchmarks read the
    shared corpora: without them, the test is skipped."""
    import importlib.util
    import sys

    import pytest

    if not shared_corpus_files():
        pytest.skip("the benchmarks read the shared corpora, absent here (%s)" % DATA_DIR)

    folder = os.path.join(REPO, "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location("benchmark_" + name,
                                                  os.path.join(folder, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def logged_losses(out):
    """{step: [every loss logged for it]} from all the run's TensorBoard events."""
    import tensorflow.compat.v1 as tf

    found = {}
    for path in tf.io.gfile.glob(os.path.join(str(out), "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "loss":
                    found.setdefault(event.step, []).append(value.simple_value)
    return found


def assert_same_run(straight, stopped, rtol=1e-5, atol=1e-6, steps=8):
    """Every loss the stopped-and-resumed run logged (before and after each resume) is the
    uninterrupted run's at that step, and they end with the same variables and slots."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    reference, logged = logged_losses(straight), logged_losses(stopped)
    assert sorted(reference) == list(range(1, steps + 1))
    assert set(logged) <= set(reference) and steps in logged
    for step, values in logged.items():
        np.testing.assert_allclose(values, reference[step] * len(values), rtol=rtol,
                                   err_msg="step %d" % step)
    a = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(straight)))
    b = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(stopped)))
    names = sorted(a.get_variable_to_shape_map())
    assert names == sorted(b.get_variable_to_shape_map())
    for name in names:
        np.testing.assert_allclose(b.get_tensor(name), a.get_tensor(name), rtol=0, atol=atol,
                                   err_msg=name)


def read_stream_batches(config, out, count, save_at=None, restore_at=None):
    """``count`` batches of 8 from the input pipeline of ``config`` (an ``InputConfig``),
    saving its data position in ``out`` after ``save_at`` of them, or first restoring the one
    saved at ``restore_at``."""
    from norbert.training import data_position
    from norbert.training.input_pipeline import make_input_fn

    stream = data_position.Stream(11, 11, data_position.setup_of(config, 8, 1))
    return read_positioned_batches(lambda: make_input_fn(config)({"batch_size": 8}),
                                   data_position.Position(stream, restore=True), out, count,
                                   save_at, restore_at)


def read_positioned_batches(dataset, position, out, count, save_at=None, restore_at=None):
    """``count`` batches of ``dataset()`` (built in a graph of its own), saving the iterator's
    data position (a ``data_position.Position``) in ``out`` after ``save_at`` of them, or first
    restoring the one saved at ``restore_at``."""
    import tensorflow.compat.v1 as tf

    from norbert.training import data_position

    with tf.Graph().as_default():
        iterator = tf.data.make_initializable_iterator(dataset())
        saver = data_position.PositionSaver([iterator], position, str(out), keep=3)
        batch = iterator.get_next()
        with tf.Session() as sess:
            sess.run([iterator.initializer] + saver.initializers)
            if restore_at is not None:
                assert saver.restore(sess, restore_at) == (
                    "data: restored the position of step %d" % restore_at)
            batches = []
            for number in range(1, count + 1):
                batches.append(sess.run(batch))
                if number == save_at:
                    saver.save(sess, number)
    return batches


def pretrain_stopping_at(files, config_file, out, monkeypatch, stop_at=None, **flags):
    """run_pretraining of 8 steps at length 32 (5 predictions, batch 8, a checkpoint every 3);
    ``stop_at``: SIGTERM to itself while that step runs (the run saves and stops, as a
    preempted VM's would). ``files``: a path, a glob or named groups, or a list of paths."""
    import os
    import signal

    import pytest

    from norbert.training import loop
    from norbert.training.pretraining import run_pretraining

    spec = files if isinstance(files, str) else ",".join(files)
    settings = dict(input_file=spec, bert_config_file=str(config_file), max_seq_length=32,
                    max_predictions_per_seq=5, do_train=True, output_dir=str(out),
                    num_train_steps=8, num_warmup_steps=0, learning_rate=1e-3,
                    train_batch_size=8, save_checkpoints_steps=3, log_every_steps=1, seed=1)
    settings.update(flags)
    if stop_at is None:
        return run_pretraining(**settings)
    run_step = loop._Trainer._run_step

    def signalled(trainer, step, log_now):
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return run_step(trainer, step, log_now)

    with monkeypatch.context() as patch:
        patch.setattr(loop._Trainer, "_run_step", signalled)
        with pytest.raises(KeyboardInterrupt):
            run_pretraining(**settings)


def same_batch(a, b):
    """Two batches (dicts of arrays) with the same features, equal."""
    import numpy as np

    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def build_output(folder):
    """{name: bytes} of a data build's output folder (a pathlib.Path), the sidecars without
    their timing: two builds that wrote the same records compare equal."""
    out = {}
    for name in sorted(os.listdir(str(folder))):
        data = (folder / name).read_bytes()
        if name.endswith(".json"):
            meta = json.loads(data)
            meta.pop("build_seconds", None)
            data = json.dumps(meta, sort_keys=True).encode()
        out[name] = data
    return out


def gzip_cut_unseen(data):
    """``data`` (over 64 KiB) gzipped, its bytes stored as they are, and cut short where its last
    4 bytes, read as a gzip trailer, give a size a file so long could hold: damage that the plan
    cannot see, met only when the file is read (as with some downloads cut short)."""
    import gzip

    packed = gzip.compress(data, compresslevel=0)
    for end in range(len(packed) - 9, 14, -1):
        if int.from_bytes(packed[end - 4:end], "little") <= 1032 * end:
            return packed[:end]
    raise AssertionError("no such cut in %d bytes: give more data" % len(data))
