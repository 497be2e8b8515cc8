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


# ---- errors name keywords when the caller used keywords -------------------------------------

@dataclasses.dataclass(frozen=True)
class Checked:
    size: int = 3
    path: str = "p"

    def __post_init__(self):
        if self.size < 1:
            raise norbert.NorbertError("--size=%d must be positive (and --path, --other too)"
                                       % self.size)


def test_as_keywords_writes_the_named_flags_as_keywords_only():
    from norbert.settings import as_keywords

    names = {"input_file", "max_seq_length"}
    assert as_keywords("--input_file is required", names) == "input_file= is required"
    assert as_keywords("--input_file: no files match x", names) == "input_file: no files match x"
    assert (as_keywords("--max_seq_length=16 does not match; pass --max_seq_length=128", names)
            == "max_seq_length=16 does not match; pass max_seq_length=128")
    # Other flags, and longer names that start alike, stay as they are.
    assert as_keywords("--do_train needs --input_files", names) == "--do_train needs --input_files"


def test_a_config_built_from_keywords_names_the_keyword():
    with pytest.raises(norbert.NorbertError) as caught:
        make_configs("step", {"c": None}, {"size": 0}, [Checked])
    assert str(caught.value) == "size=0 must be positive (and path=, --other too)"
    # Built directly (as the commands build them from flags), it names the flags.
    with pytest.raises(norbert.NorbertError, match="^--size=0 must be positive"):
        Checked(size=0)


def test_keyword_errors_rewrites_errors_of_the_whole_call_only_for_keyword_calls():
    from norbert.settings import keyword_errors

    @keyword_errors
    def step(config: Checked = None, **settings):
        config = config or Checked(**settings)
        raise norbert.NorbertError("--path=%s cannot be read; see --size" % config.path)

    with pytest.raises(norbert.NorbertError, match=r"^path=x cannot be read; see size=$"):
        step(path="x")
    with pytest.raises(norbert.NorbertError, match=r"^--path=x cannot be read; see --size$"):
        step(Checked(path="x"))
    assert step.__name__ == "step"


def test_keyword_errors_rewrites_warnings_of_keyword_calls_as_they_are_shown():
    import warnings

    from norbert.settings import keyword_errors

    class SizeWarning(UserWarning):
        pass

    @keyword_errors
    def step(config: Checked = None, **settings):
        config = config or Checked(**settings)
        warnings.warn("--size=%d is large; see --path and --other" % config.size, SizeWarning)
        warnings.warn("nothing to rewrite", SizeWarning)
        return config.size

    with pytest.warns(SizeWarning) as shown:
        assert step(size=9) == 9
    assert [str(w.message) for w in shown] == ["size=9 is large; see path= and --other",
                                               "nothing to rewrite"]
    assert all(isinstance(w.message, SizeWarning) for w in shown)
    with pytest.warns(SizeWarning) as shown:  # a config, not keywords: flags' words stay
        step(Checked(size=9))
    assert [str(w.message) for w in shown] == ["--size=9 is large; see --path and --other",
                                               "nothing to rewrite"]
    # Ignored warnings stay ignored, and the hook is the caller's again after the call.
    hook = warnings.showwarning
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("ignore", SizeWarning)
        step(size=9)
    assert seen == [] and warnings.showwarning is hook


def test_build_vocab_from_python_names_keywords_in_its_warnings(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("one two three\n", encoding="utf-8")
    with pytest.warns(norbert.vocab_building.builder.VocabShortfallWarning) as shown:
        norbert.build_vocab(input_file=str(text), output_file=str(tmp_path / "v"),
                            vocab_size=500, progress=False)
    assert "fewer than vocab_size=500: no pair left is seen min_frequency= times" in str(
        shown[0].message)


def test_build_vocab_from_python_names_keywords(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("one two three\n", encoding="utf-8")
    with pytest.raises(norbert.NorbertError, match=r"^vocab_size=0 must be positive"):
        norbert.build_vocab(input_file=str(text), output_file=str(tmp_path / "v"), vocab_size=0)
    # An error met later in the run names the keyword too.
    old = tmp_path / "old_vocab.txt"
    old.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n", encoding="utf-8")
    with pytest.raises(norbert.NorbertError) as caught:
        norbert.build_vocab(input_file=str(text), output_file=str(tmp_path / "v"),
                            fill_unused_of=str(old))
    assert str(caught.value).startswith("fill_unused_of=%s has no [unusedN]" % old)


def test_build_vocab_from_the_command_line_names_flags(tmp_path):
    import os
    import subprocess
    import sys

    text = tmp_path / "t.txt"
    text.write_text("one two three\n", encoding="utf-8")
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "scripts", "build_vocab.py")
    done = subprocess.run([sys.executable, script, "--input_file=%s" % text,
                           "--output_file=%s" % (tmp_path / "v"), "--vocab_size=0"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "error: --vocab_size=0 must be positive" in done.stderr


def test_run_pretraining_from_python_names_keywords(tmp_path):
    from helpers import tiny_bert_config

    config = tmp_path / "bert_config.json"
    config.write_text(tiny_bert_config(), encoding="utf-8")
    # Met after the configs are built: the settings against the model's bert_config.json.
    with pytest.raises(norbert.NorbertError) as caught:
        norbert.run_pretraining(input_file=str(tmp_path / "none*.tfrecord"),
                                bert_config_file=str(config), output_dir=str(tmp_path / "out"),
                                do_train=True, max_seq_length=128)
    assert str(caught.value).startswith("max_seq_length=128 is longer than the model's "
                                        "max_position_embeddings=64")
    assert str(caught.value).endswith("use a shorter max_seq_length=")
