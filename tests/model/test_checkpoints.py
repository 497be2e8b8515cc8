import numpy as np
import pytest

tf = pytest.importorskip("tensorflow").compat.v1

from norbert import NorbertError  # noqa: E402
from norbert.model.checkpoints import init_from_checkpoint, is_run_state, resolve  # noqa: E402
from norbert.model.checkpoints import (checkpoint_shapes, damage, read_checkpoint,  # noqa: E402
                                       save_checkpoint, unreadable)


def _save(path, shapes):
    """A checkpoint holding variables of the given shapes, each filled with its index + 1."""
    with tf.Graph().as_default():
        variables = [
            tf.get_variable(name, initializer=np.full(shape, i + 1.0, np.float32), trainable=True)
            for i, (name, shape) in enumerate(shapes.items())
        ]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return tf.train.Saver(variables).save(sess, path)


def test_trainable_variables_restored_optimizer_state_left_out(tmp_path):
    ckpt = _save(str(tmp_path / "model.ckpt"), {
        "bert/dense/kernel": [2, 3],
        "bert/dense/kernel/adam_m": [2, 3],
        "cls/other_head/bias": [4],
        "global_step": [],
    })
    with tf.Graph().as_default():
        kernel = tf.get_variable("bert/dense/kernel", [2, 3])
        tf.get_variable("cls/new_head/bias", [5])
        report = init_from_checkpoint(ckpt)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(kernel), np.full([2, 3], 1.0))
    assert report.restored == ["bert/dense/kernel"]
    assert report.fresh == ["cls/new_head/bias"]
    assert report.unused == ["bert/dense/kernel/adam_m", "cls/other_head/bias", "global_step"]
    text = report.summary()
    assert "initialised 1 variables" in text and "cls/new_head/bias" in text
    assert "optimizer state or step of the earlier run: 2 variables" in text
    assert "unused by this model: cls/other_head/bias" in text


def test_shape_mismatch_names_the_variable(tmp_path):
    ckpt = _save(str(tmp_path / "model.ckpt"), {"bert/embeddings/word_embeddings": [10, 4]})
    with tf.Graph().as_default():
        tf.get_variable("bert/embeddings/word_embeddings", [12, 4])
        with pytest.raises(NorbertError, match=r"bert/embeddings/word_embeddings has shape "
                                               r"\[10, 4\] there but \[12, 4\]"):
            init_from_checkpoint(ckpt)


def test_resolve_prefix_or_folder(tmp_path):
    ckpt = _save(str(tmp_path / "model.ckpt-7"), {"v": [1]})
    with tf.Graph().as_default():
        with tf.Session():
            tf.train.update_checkpoint_state(str(tmp_path), ckpt)
    assert resolve(ckpt) == ckpt
    assert resolve(str(tmp_path)) == ckpt
    with pytest.raises(NorbertError, match="no checkpoint there"):
        resolve(str(tmp_path / "model.ckpt-8"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NorbertError, match="holds no checkpoint"):
        resolve(str(tmp_path / "empty"))


def test_run_state_names():
    for name in ["global_step", "bert/x/kernel/adam_m", "bert/x/lamb_v", "bert/x/grad_acc",
                 "gradient_accumulation/micro_step", "loss_scale/scale"]:
        assert is_run_state(name)
    for name in ["bert/x/kernel", "cls/predictions/output_bias", "bert/adam_layer/kernel"]:
        assert not is_run_state(name)


# ---- whole checkpoints as numpy ----------------------------------------------------------


def _written(tmp_path):
    values = {"bert/embeddings/word_embeddings": np.arange(12, dtype=np.float32).reshape(4, 3),
              "cls/predictions/output_bias": np.linspace(-1, 1, 4).astype(np.float32),
              "global_step": np.array(7, np.int64)}
    return values, save_checkpoint(values, str(tmp_path / "model.ckpt"))


def test_written_and_read_back_as_stored(tmp_path):
    values, prefix = _written(tmp_path)
    assert prefix == str(tmp_path / "model.ckpt")
    assert checkpoint_shapes(prefix) == {name: v.shape for name, v in values.items()}
    read = read_checkpoint(prefix)
    assert sorted(read) == sorted(values)
    for name, value in values.items():
        assert read[name].dtype == value.dtype, name
        np.testing.assert_array_equal(read[name], value)
    assert list(read_checkpoint(prefix, ["global_step"])) == ["global_step"]
    # Google's code restores it into a graph as any checkpoint.
    with tf.Graph().as_default():
        table = tf.get_variable("bert/embeddings/word_embeddings", [4, 3])
        tf.train.init_from_checkpoint(prefix, {"bert/": "bert/"})
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(table), values[
                "bert/embeddings/word_embeddings"])
    with pytest.raises(NorbertError, match="model.ckpt has no variable cls/other"):
        read_checkpoint(prefix, ["cls/other"])


def _flip_a_byte(path):
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def _cut(path, size):
    path.write_bytes(path.read_bytes()[:size])


def test_flipped_bytes_show_only_when_the_checkpoint_is_read_whole(tmp_path):
    _, prefix = _written(tmp_path)
    assert damage(prefix) is None and unreadable(prefix) is None
    _flip_a_byte(tmp_path / "model.ckpt.data-00000-of-00001")
    assert damage(prefix) is None  # the sizes still add up
    assert unreadable(prefix)  # a checksum does not
    _cut(tmp_path / "model.ckpt.data-00000-of-00001", 20)
    assert damage(prefix) and unreadable(prefix)


@pytest.mark.parametrize("harm, file, message", [
    (_flip_a_byte, "model.ckpt.data-00000-of-00001",
     r"checkpoint .*model.ckpt is damaged \(.*\): copy it again, or use an earlier checkpoint$"),
    (lambda p: _cut(p, 20), "model.ckpt.data-00000-of-00001",
     r"checkpoint .*model.ckpt is damaged \(.*\): copy it again, or use an earlier checkpoint$"),
    (lambda p: _cut(p, 20), "model.ckpt.index",
     r"checkpoint .*model.ckpt is unreadable \(.*\): copy it again$"),
])
def test_a_damaged_checkpoint_is_one_line_naming_it_and_the_fix(tmp_path, harm, file, message):
    _, prefix = _written(tmp_path)
    harm(tmp_path / file)
    with pytest.raises(NorbertError, match=message) as error:
        if file.endswith(".index"):
            checkpoint_shapes(prefix)
        read_checkpoint(prefix)
    assert "\n" not in str(error.value)
    if not file.endswith(".index"):
        with pytest.raises(NorbertError, match=": copy it again, or export an earlier one$"):
            read_checkpoint(prefix, fix="copy it again, or export an earlier one")
