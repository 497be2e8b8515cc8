"""CoNLL-U as UD defines it: words, multiword-token ranges and empty nodes, label columns."""

import pytest

from norbert.downstream import conllu
from norbert.errors import NorbertError

TEXT = """# sent_id = 1
# text = Han så dens hus.
1\tHan\than\tPRON\tpron\t_\t2\tnsubj\t_\tname=O
2\tså\tse\tVERB\tverb\t_\t0\troot\t_\t_
3-4\tdens\t_\t_\t_\t_\t_\t_\t_\t_
3\tden\tden\tDET\tdet\t_\t5\tdet\t_\tname=B-ORG
4\ts\ts\tPART\tgen\t_\t3\tcase\t_\tSpaceAfter=No|name=I-ORG
4.1\tnull\t_\t_\t_\t_\t_\t_\t2:ref\t_
5\thus\thus\tNOUN\tsubst\t_\t2\tobj\t_\t_

1\tJa\tja\tINTJ\tinterj\t_\t0\troot\t_\t_
"""


def test_words_ranges_and_empty_nodes():
    sentences = conllu.parse_lines(TEXT.split("\n"), "UPOS")
    assert [s.words for s in sentences] == [("Han", "så", "den", "s", "hus"), ("Ja",)]
    assert sentences[0].labels == ("PRON", "VERB", "DET", "PART", "NOUN")
    assert sentences[0].line == 3 and sentences[1].line == 11


@pytest.mark.parametrize("column, labels", [
    ("XPOS", ("pron", "verb", "det", "gen", "subst")),
    ("DEPREL", ("nsubj", "root", "det", "case", "obj")),
    ("MISC:name", ("O", "O", "B-ORG", "I-ORG", "O")),  # MISC without the key: O
])
def test_label_columns(column, labels):
    assert conllu.parse_lines(TEXT.split("\n"), column)[0].labels == labels


def test_misc_value():
    assert conllu.misc_value("SpaceAfter=No|name=B-PER", "name") == "B-PER"
    assert conllu.misc_value("_", "name") == conllu.OUTSIDE
    assert conllu.misc_value("names=B-PER", "name") == conllu.OUTSIDE


@pytest.mark.parametrize("column", ["UPOS", "XPOS", "DEPREL", "MISC:name"])
def test_label_column_accepted(column):
    assert conllu.check_label_column(column) == column


@pytest.mark.parametrize("column", ["upos", "FORM", "MISC:", "LEMMA", "MISC:a|b"])
def test_label_column_refused(column):
    with pytest.raises(NorbertError, match="--label_column=.* is not a label column"):
        conllu.check_label_column(column)


@pytest.mark.parametrize("line, what", [
    ("1\tHan\than\tPRON", "4 fields where 10 are expected"),
    ("x\tHan\than\tPRON\t_\t_\t0\troot\t_\t_", "the ID 'x' is not a word number"),
    ("3\tHan\than\tPRON\t_\t_\t0\troot\t_\t_", "word 3 follows word 1"),
    ("2\t\than\tPRON\t_\t_\t0\troot\t_\t_", "an empty FORM or label field"),
])
def test_malformed_line_named_with_file_and_number(line, what):
    lines = ["# c", "1\tJa\tja\tINTJ\t_\t_\t0\troot\t_\t_", line]
    with pytest.raises(NorbertError) as error:
        conllu.parse_lines(lines, "UPOS", "x.conllu")
    assert str(error.value).startswith("x.conllu:3: " + what)
    assert "\n" not in str(error.value)


def test_read_conllu_files(tmp_path):
    path = tmp_path / "a.conllu"
    path.write_text(TEXT.replace("\n", "\r\n"), encoding="utf-8")  # Windows line ends too
    assert len(conllu.read_conllu(str(path), "UPOS", "--train_file")) == 2
    (tmp_path / "empty.conllu").write_text("# only a comment\n\n")
    with pytest.raises(NorbertError, match="--train_file=.*empty.conllu holds no sentence"):
        conllu.read_conllu(str(tmp_path / "empty.conllu"), "UPOS", "--train_file")
