import dataclasses

import pytest

import norbert
from norbert.settings import make_configs, one_config


@dataclasses.dataclass
class Alpha:
    path: str
    size: int = 3


@dataclasses.dataclass
class Beta:
    rate: float = 0.5


def test_settings_go_to_the_class_that_has_the_field():
    alpha, beta = make_configs("step", {"a": None, "b": None}, {"path": "p", "rate": 2.0},
                               [Alpha, Beta])
    assert alpha == Alpha("p") and beta == Beta(2.0)


def test_a_given_object_is_used_as_it_is():
    given = Beta(9.0)
    alpha, beta = make_configs("step", {"a": None, "b": given}, {"path": "p"}, [Alpha, Beta])
    assert beta is given and alpha == Alpha("p")


def test_unknown_setting_names_the_step_and_the_valid_settings():
    with pytest.raises(TypeError, match=r"step\(\) got unknown setting sise; its settings are: "
                                        r"path, rate, size"):
        make_configs("step", {"a": None, "b": None}, {"path": "p", "sise": 4}, [Alpha, Beta])


def test_a_setting_beside_its_own_config_object_is_refused_not_ignored():
    with pytest.raises(TypeError, match=r"pass rate inside b=Beta\(...\)"):
        make_configs("step", {"a": None, "b": Beta()}, {"path": "p", "rate": 1.0}, [Alpha, Beta])


def test_missing_required_setting_is_named():
    with pytest.raises(TypeError, match=r"step\(\): needs the setting path"):
        one_config("step", None, {"size": 1}, Alpha)


def test_build_vocab_by_keywords_equals_by_config(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n\nkatten satt der\n"
                      * 5, encoding="utf-8")
    by_config = tmp_path / "a.txt"
    by_keywords = tmp_path / "b.txt"
    norbert.build_vocab(norbert.VocabConfig(output_file=str(by_config), vocab_size=60,
                                            num_unused=2),
                        corpus_config=norbert.CorpusConfig(input_file=str(corpus),
                                                           min_frequency=1))
    stats = norbert.build_vocab(input_file=str(corpus), output_file=str(by_keywords),
                                vocab_size=60, num_unused=2, min_frequency=1)
    assert by_keywords.read_bytes() == by_config.read_bytes()
    assert stats.vocab_size == len(by_keywords.read_text(encoding="utf-8").splitlines())


def test_create_pretraining_data_by_keywords_equals_by_config(tmp_path, uncased_vocab_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat .\nit was a sunny day .\nbirds sang .\n\n"
                      "a second document starts here .\nit has two lines .\n", encoding="utf-8")
    common = dict(input_file=str(corpus), vocab_file=uncased_vocab_path, max_seq_length=32,
                  max_predictions_per_seq=5, dupe_factor=2)
    norbert.create_pretraining_data(norbert.DataConfig(output_file=str(tmp_path / "a.tfrecord"),
                                                       **common))
    summary = norbert.create_pretraining_data(output_file=str(tmp_path / "b.tfrecord"), **common)
    assert (tmp_path / "a.tfrecord").read_bytes() == (tmp_path / "b.tfrecord").read_bytes()
    assert summary.instances > 0
    with pytest.raises(TypeError, match="create_pretraining_data"):
        norbert.create_pretraining_data(output_file=str(tmp_path / "c"), max_seq_len=32, **common)


def test_every_public_name_resolves():
    for name in norbert.__all__:
        assert getattr(norbert, name).__name__ == name


def test_dir_lists_every_public_name_lazy_ones_too():
    import subprocess
    import sys

    # A fresh interpreter: here the lazy names may have been loaded by other tests already.
    code = "import norbert; print(' '.join(dir(norbert)))"
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert set(norbert.__all__) <= set(listed)
    assert "run_pretraining" in listed and "DistributionConfig" in listed


def test_commands_quiet_tensorflow_start_up_unless_asked():
    import os
    import subprocess
    import sys

    code = "import norbert.commands, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True)
    assert quiet.stdout.strip() == "1"  # INFO lines (CPU features, MLIR passes) hidden
    asked = subprocess.run([sys.executable, "-c", code], env=dict(env, TF_CPP_MIN_LOG_LEVEL="0"),
                           capture_output=True, text=True, check=True)
    assert asked.stdout.strip() == "0"


def test_a_step_may_require_a_setting_its_config_defaults():
    from norbert.settings import Required, make_configs, required_names

    @dataclasses.dataclass(frozen=True)
    class Casing:
        lower: bool = True
        accents: bool = False

    assert make_configs("step", {"config": None}, {}, [Casing]) == (Casing(),)
    with pytest.raises(TypeError, match=r"step\(\): needs the setting lower"):
        make_configs("step", {"config": None}, {"accents": True}, [Casing], required=["lower"])
    assert make_configs("step", {"config": None}, {"lower": False}, [Casing],
                        required=["lower"]) == (Casing(lower=False),)
    assert make_configs("step", {"config": Casing()}, {}, [Casing], required=["lower"])
    with pytest.raises(ValueError, match="no config has"):
        make_configs("step", {"config": None}, {}, [Casing], required=["upper"])
    assert required_names(Casing) == (Casing, frozenset())
    assert required_names(Required("m:Casing", ("lower",))) == ("m:Casing", frozenset({"lower"}))


def test_the_export_requires_the_casing_by_keywords(tmp_path):
    with pytest.raises(TypeError, match=r"export_to_hf\(\): needs the setting do_lower_case"):
        norbert.export_to_hf(checkpoint="c", bert_config_file="b", vocab_file="v",
                             output_dir=str(tmp_path / "hf"))
