"""Hugging Face's tokenizer options end to end: the vocab builder learns with them, the data
builder (both modes) tokenises with them and records them, the export writes them, and
transformers' tokenizer on the exported folder gives the ids norbert gives, for each setting.

Each setting is checked against Google's defaults on the same text, so a setting that did not
reach a step would show."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, SPECIALS, corpus_file, scaled
from norbert import FullTokenizer, TokenizerOptions, build_vocab, create_pretraining_data
from norbert.data import sidecar, tfrecord
from norbert.errors import NorbertError
from norbert.tokenization import text as textlib
from norbert.tokenization.vocab import load_vocab

MARKERS = ("<url>", "[keep]")

# (name, the corpus's language, do_lower_case, options)
SETTINGS = [
    ("uncased-keep-accents", "norwegian", True, TokenizerOptions(strip_accents=False)),
    ("cased-strip-accents", "norwegian", False, TokenizerOptions(strip_accents=True)),
    ("cjk-in-words", "zh_ru", True, TokenizerOptions(tokenize_chinese_chars=False)),
    ("never-split", "english", True, TokenizerOptions(never_split=MARKERS)),
]


def _corpus(name, tmp_path, markers=False):
    """The first 120 KB of the corpus file in ``name``'s language (whole lines); with
    ``markers``, every third sentence gets a never-split marker between spaces, in the case
    written."""
    with open(corpus_file(name), encoding="utf-8") as f:
        lines = f.read(120000).split("\n")[:-1]
    if markers:
        lines = [("%s %s" % (l, MARKERS[i % 2]) if l and i % 3 == 0 else l)
                 for i, l in enumerate(lines)]
    out = tmp_path / "corpus.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(out), [l for l in lines if l.strip()]


def _record_ids(paths):
    """Every token id of the text in the records: input_ids with the masked positions given
    back their original ids (a random replacement may be any id), padding left out."""
    ids = set()
    for path in paths:
        for record in tfrecord.read_records(path):
            f = tfrecord.decode_example(record)
            tokens = list(f["input_ids"][:sum(f["input_mask"])])
            for pos, original, weight in zip(f["masked_lm_positions"], f["masked_lm_ids"],
                                             f["masked_lm_weights"]):
                if weight:
                    tokens[pos] = original
            ids.update(int(i) for i in tokens)
    return ids


def _small_encoder(work, vocab_size):
    """A random 1-layer encoder's checkpoint (no heads) and its bert_config.json."""
    from norbert.conversion import hf_format
    from norbert.model.checkpoints import save_checkpoint
    from norbert.model.bert_config import BertConfig

    config = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    config_file = str(work / "bert_config.json")
    config.to_json_file(config_file)
    rng = np.random.RandomState(0)
    values = {p.name: rng.randn(*p.shape).astype(np.float32)
              for p in hf_format.parameter_table(config) if p.group in ("bert", "pooler")}
    return config_file, save_checkpoint(values, str(work / "model" / "model.ckpt"))


@pytest.fixture(scope="module", params=SETTINGS, ids=[s[0] for s in SETTINGS])
def built(request, tmp_path_factory):
    """Per setting: the vocab learned with the options, and records built with them."""
    name, corpus, lower, options = request.param
    options = dataclasses.replace(options, do_lower_case=lower)
    work = tmp_path_factory.mktemp(name)
    text, lines = _corpus(corpus, work, markers=bool(options.never_split))
    vocab_file = str(work / "vocab.txt")
    size = 3000 if options.tokenize_chinese_chars else 6000  # ##-forms of 2,000 ideographs
    build_vocab(input_file=text, output_file=vocab_file, vocab_size=size, num_unused=0,
                progress=False, tokenizer_options=options)
    records = str(work / "train.tfrecord")
    create_pretraining_data(input_file=text, output_file=records, vocab_file=vocab_file,
                            dupe_factor=1, max_seq_length=64,
                            max_predictions_per_seq=10, progress=False, num_output_shards=2,
                            num_workers=2, tokenizer_options=options)
    return dict(name=name, work=work, lines=lines, lower=lower, options=options,
                vocab_file=vocab_file, vocab=load_vocab(vocab_file),
                records=["%s-%05d-of-00002" % (records, k) for k in range(2)])


def test_vocab_learned_with_the_options(built):
    vocab, options = built["vocab"], built["options"]
    words = [t[2:] if t.startswith("##") else t for t in vocab if t not in SPECIALS]
    accented = [w for w in words if textlib.strip_accents(w) != w]
    cjk_continued = [t for t in vocab if t.startswith("##") and textlib.is_cjk(t[2])]
    name = built["name"]
    if name == "uncased-keep-accents":  # lower-cased, accents kept: "på", "være", "får"
        assert {"på", "være"} <= set(vocab) and len(accented) > 30
        assert not [w for w in words if w != w.lower()]
    elif name == "cased-strip-accents":  # cased, accents gone: "pa" and capitals
        assert not accented and "pa" in vocab and [w for w in words if w != w.lower()]
    elif name == "cjk-in-words":  # ideographs continue words: ##c tokens and longer pieces
        assert len(cjk_continued) > scaled(100)
    else:  # never-split words are tokens; their letters were not learned from them
        assert all(m in vocab for m in options.never_split)
        assert not cjk_continued
    if name != "cjk-in-words":
        assert not cjk_continued


def test_records_tokenised_with_the_options_and_say_so(built):
    """The records hold ids only the options produce, and the sidecar records the options."""
    vocab, options = built["vocab"], built["options"]
    meta = sidecar.read(built["records"][0])
    assert TokenizerOptions.from_settings(meta["settings"]) == options
    ids = _record_ids(built["records"])
    ours = FullTokenizer(built["vocab_file"], do_lower_case=built["lower"],
                         **options.tokenizer_kwargs())
    google = FullTokenizer(built["vocab_file"], do_lower_case=built["lower"], check_casing=False)
    expected = set()
    for line in built["lines"]:
        expected.update(ours.encode(line))
    only_ours = {i for i in expected - {vocab["[UNK]"]}} - {
        i for line in built["lines"] for i in google.encode(line)}
    assert only_ours, "the setting makes no difference on this text"
    # Every id the options alone produce that is frequent enough to be in some record is, and
    # the ids are those of the options' tokenizer (no id only Google's tokenizer gives).
    assert ids - {vocab["[CLS]"], vocab["[SEP]"]} <= expected
    assert ids & only_ours


def test_exported_tokenizer_gives_our_ids(built):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert.conversion.export import export_to_hf
    from norbert.conversion.importing import import_from_hf

    work, options = built["work"], built["options"]
    config_file, ckpt = _small_encoder(work, len(built["vocab"]))
    export_to_hf(checkpoint=ckpt, bert_config_file=config_file, vocab_file=built["vocab_file"],
                 output_dir=str(work / "hf"),
                 tokenizer_options=options)
    written = json.loads((work / "hf" / "tokenizer_config.json").read_text())
    assert written["strip_accents"] == options.strip_accents
    theirs = transformers.AutoTokenizer.from_pretrained(str(work / "hf"))
    ours = FullTokenizer(built["vocab_file"], do_lower_case=built["lower"],
                         **options.tokenizer_kwargs())
    google = FullTokenizer(built["vocab_file"], do_lower_case=built["lower"], check_casing=False)
    lines = built["lines"]
    encoded = theirs(lines, add_special_tokens=False)["input_ids"]
    differing = [l for l, ids in zip(lines, encoded) if ids != ours.encode(l)]
    assert not differing, differing[:3]
    assert [l for l in lines if ours.encode(l) != google.encode(l)]  # the setting mattered

    # Imported again, the folder's options are reported as the flags to build data with.
    back = import_from_hf(hf_dir=str(work / "hf"), output_dir=str(work / "back"))
    assert options.flags() in back.summary() and back.tokenizer_options == options


def test_never_split_next_to_punctuation_is_where_transformers_differs(tmp_path):
    """transformers 5 has no never_split; its added tokens also match beside punctuation.
    This records the one known difference, so that a change on either side shows."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from norbert.conversion import hf_format

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<url>", "<", ">", "url", ",", "see"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    options = TokenizerOptions(never_split=("<url>",))
    config = hf_format.tokenizer_config(True, 64, options, {t: i for i, t in enumerate(vocab)})
    (tmp_path / "tokenizer_config.json").write_bytes(hf_format.json_bytes(config))
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = FullTokenizer.from_vocab(vocab, **options.tokenizer_kwargs())
    for same in ("see <url> see", "<url>", "SEE <url>"):
        assert theirs(same, add_special_tokens=False)["input_ids"] == ours.encode(same), same
    assert ours.tokenize("see <url>,") == ["see", "<", "url", ">", ","]
    assert theirs.tokenize("see <url>,") == ["see", "<url>", ","]


def test_never_split_word_missing_from_the_vocab_is_refused(tmp_path, make_vocab):
    vocab_file = make_vocab(["hello", "world"])
    (tmp_path / "in.txt").write_text("hello world <url>\n\nhello world\n")
    with pytest.raises(NorbertError, match=r"^never_split: <url> not in .*vocab.txt"):
        create_pretraining_data(input_file=str(tmp_path / "in.txt"),
                                output_file=str(tmp_path / "out.tfrecord"), vocab_file=vocab_file,
                                never_split=("<url>",))
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith("out")]


def test_flags_of_the_three_commands(tmp_path):
    """The options are flags of build_vocab, create_pretraining_data and convert_to_pytorch,
    and reach the tools: a vocab and records built by the commands keep accents."""
    text, _ = _corpus("norwegian", tmp_path)
    env = dict(os.environ, PYTHONPATH=REPO)

    def run(script, *flags):
        done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", script)] + list(flags),
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    vocab_file = str(tmp_path / "vocab.txt")
    run("build_vocab.py", "--input_file=" + text, "--output_file=" + vocab_file,
        "--vocab_size=2000", "--num_unused=0", "--strip_accents=false", "--never_split=<url>",
        "--progress=false")
    vocab = load_vocab(vocab_file)
    assert "på" in vocab and "<url>" in vocab
    run("create_pretraining_data.py", "--input_file=" + text,
        "--output_file=" + str(tmp_path / "train.tfrecord"), "--vocab_file=" + vocab_file,
        "--strip_accents=false", "--never_split=<url>", "--dupe_factor=1", "--max_seq_length=64",
        "--max_predictions_per_seq=10", "--progress=false")
    meta = sidecar.read(str(tmp_path / "train.tfrecord"))
    assert (meta["settings"]["strip_accents"], meta["settings"]["never_split"]) == (False,
                                                                                    ["<url>"])
    assert vocab["på"] in _record_ids([str(tmp_path / "train.tfrecord")])
    helped = run("convert_to_pytorch.py", "--helpfull")
    for flag in ("--[no]strip_accents:", "--[no]tokenize_chinese_chars:", "--never_split:"):
        assert flag in helped.stdout
