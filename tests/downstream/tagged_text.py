"""A small tagged corpus the tests write themselves, from the bundled English text, and a
checkpoint of a tiny encoder.

Each word is labelled by a rule a model can learn from the word alone (determiners, pronouns,
prepositions, conjunctions, numbers, punctuation, the rest ``X``), so that fine-tuning has
something to find. Every fifth sentence also holds a multiword-token range line and an empty
node, which the reader must pass over.
"""

import os
import re

from helpers import REPO

CLASSES = {
    "DET": {"the", "a", "an", "this", "that", "these", "every", "any"},
    "PRON": {"he", "she", "it", "they", "we", "i", "you", "them", "his", "her", "its"},
    "ADP": {"of", "in", "at", "on", "with", "to", "for", "from", "by", "into", "like"},
    "CCONJ": {"and", "but", "or"},
}


def tag(word):
    for label, words in CLASSES.items():
        if word.lower() in words:
            return label
    if word.isdigit():
        return "NUM"
    if not any(c.isalnum() for c in word):
        return "PUNCT"
    return "X"


def conllu_text(sentences, misc=None):
    """CoNLL-U for word lists; ``misc(i, word)`` gives the MISC field (default ``_``)."""
    out = []
    for number, words in enumerate(sentences):
        out.append("# sent_id = %d" % number)
        for i, word in enumerate(words, 1):
            if number % 5 == 0 and i == 1 and len(words) > 1:
                out.append("1-2\t%s%s\t_\t_\t_\t_\t_\t_\t_\t_" % (words[0], words[1]))
            out.append("%d\t%s\t%s\t%s\t_\t_\t%d\t%s\t_\t%s" % (
                i, word, word.lower(), tag(word), 0 if i == 1 else 1,
                "root" if i == 1 else "dep", misc(i, word) if misc else "_"))
            if number % 5 == 0 and i == 1:
                out.append("1.1\tgone\tgo\tVERB\t_\t_\t_\t_\t0:root\t_")
        out.append("")
    return "\n".join(out) + "\n"


def english_sentences():
    with open(os.path.join(REPO, "tests", "text", "english.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    return [re.findall(r"\w+|[^\w\s]", line) for line in lines]


def save_tiny_checkpoint(config_path, prefix, seed=0):
    """A checkpoint of the encoder in ``config_path`` at ``prefix``: its variables (``bert/``)
    and a step."""
    import tensorflow.compat.v1 as tf

    from norbert.model.bert_config import BertConfig
    from norbert.model.modeling import BertModel

    config = BertConfig.from_json_file(str(config_path))
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        BertModel(config, False, tf.zeros([1, 4], tf.int32))
        tf.train.get_or_create_global_step()
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return saver.save(sess, str(prefix), write_meta_graph=False)
