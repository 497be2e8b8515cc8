"""The one worker-process policy: spawn once TensorFlow is loaded or off Linux, fork otherwise;
and pools started with spawn give the same word counts and shards as one process."""

import collections
import sys
import types

import pytest

from norbert import workers
from norbert.data import sharded
from norbert.data.builder import DataConfig, create_pretraining_data
from norbert.tokenization import text as textlib
from norbert.vocab_building import word_counts


@pytest.fixture
def no_tensorflow(monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


@pytest.fixture
def tensorflow_loaded(monkeypatch):
    """The parent looks as if it had imported TensorFlow (a stand-in: nothing imports it)."""
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))


def test_fork_on_linux_without_tensorflow(no_tensorflow, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert workers.start_method() == "fork"
    assert workers.pool_context().get_start_method() == "fork"


def test_spawn_once_tensorflow_is_loaded(tensorflow_loaded, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert workers.start_method() == "spawn"
    assert workers.pool_context().get_start_method() == "spawn"


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_spawn_off_linux(no_tensorflow, monkeypatch, platform):
    monkeypatch.setattr(sys, "platform", platform)
    assert workers.start_method() == "spawn"


def _record_start_methods(monkeypatch, module, attribute):
    """Wraps ``module.attribute`` (a ``pool_context``) to note each start method it gives."""
    seen = []
    original = getattr(module, attribute)

    def recording():
        context = original()
        seen.append(context.get_start_method())
        return context

    monkeypatch.setattr(module, attribute, recording)
    return seen


TEXT = """The quick brown fox jumps over the lazy dog.
The dog sleeps; the fox runs, and the fox hides in the forest.

Foxes and dogs are not the same: a fox is wild, a dog is tame.
Jumping foxes jumped over sleeping dogs while the quick brown foxes watched.
"""


def test_word_counts_from_a_spawned_pool(tmp_path, tensorflow_loaded, monkeypatch):
    seen = _record_start_methods(monkeypatch, workers, "pool_context")
    paths = []
    for i in range(2):
        path = tmp_path / ("t%d.txt" % i)
        path.write_text(TEXT * (i + 1), encoding="utf-8")
        paths.append(str(path))
    counts, stats = word_counts.count_words(paths, True, num_workers=2, range_bytes=40)
    assert seen == ["spawn"]
    expected = collections.Counter(textlib.basic_tokenize(TEXT * 3, True))
    assert counts == expected and stats.lines == 3 * TEXT.count("\n")


def test_shards_from_a_spawned_pool_match_one_process(tmp_path, make_vocab, tensorflow_loaded,
                                                      monkeypatch):
    seen = _record_start_methods(monkeypatch, sharded, "pool_context")
    words = sorted(set(textlib.basic_tokenize(TEXT, True)))
    vocab = make_vocab(words + sorted(set("".join(words)) - set(words)))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([TEXT] * 6), encoding="utf-8")
    outs = []
    for num_workers in (1, 2):
        folder = tmp_path / ("w%d" % num_workers)
        folder.mkdir()
        outs.append(str(folder / "t.tfrecord"))
        summary = create_pretraining_data(DataConfig(
            input_file=str(corpus), output_file=outs[-1], vocab_file=vocab, dupe_factor=2,
            max_seq_length=64, max_predictions_per_seq=5, num_output_shards=2,
            num_workers=num_workers, progress=False))
        assert summary.instances > 0
    assert seen == ["spawn"]  # only the two-worker build starts a pool
    for k in range(2):
        suffix = "-%05d-of-00002" % k
        with open(outs[0] + suffix, "rb") as a, open(outs[1] + suffix, "rb") as b:
            assert a.read() == b.read()
