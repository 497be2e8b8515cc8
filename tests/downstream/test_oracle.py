"""The oracle: the same task, data, hyperparameters, seeds and batches, fine-tuned by
transformers' AutoModelForTokenClassification from the folder norbert's conversion exports,
gives a mean accuracy within one point of norbert's (or within the seeds' spread).

The same schedule means the same update rule too: BERT's AdamWeightDecay, which norbert's
optimizer is, written here for torch from its formula."""

import random

import numpy as np
import pytest

from norbert.downstream import tasks
from norbert.downstream.config import DownstreamConfig, FinetuneConfig
from norbert.downstream.evaluate import evaluate_model, prepare_task
from norbert.model.bert_config import BertConfig
from norbert.tokenization.options import TokenizerOptions

# 30 updates of the tiny model: enough to learn most of the tags (about 0.98), few enough that
# the optimizer rule shows (with torch's bias-corrected AdamW the same run stays at the
# majority tag, 0.62).
SETTINGS = FinetuneConfig(learning_rate=1e-3, num_train_epochs=2, train_batch_size=8,
                          max_seq_length=48, warmup_proportion=0.1, num_seeds=3)


def _adam_weight_decay(torch):
    """BERT's AdamWeightDecay as the BERT paper's code states the rule (moments without bias
    correction; decay added to the update), for torch parameters; transformers' optimizers
    all correct the bias now, which makes the first updates about 3x smaller."""

    class AdamWeightDecay(torch.optim.Optimizer):
        def __init__(self, groups, lr):
            super().__init__(groups, dict(lr=lr, weight_decay=0.0))

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                    m, v = state["m"], state["v"]
                    m.mul_(0.9).add_(p.grad, alpha=0.1)
                    v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                    update = m / (v.sqrt() + 1e-6) + group["weight_decay"] * p
                    p.sub_(group["lr"] * update)

    return AdamWeightDecay


def _hf_finetune(folder, task, settings, seed):
    """transformers' run with run_classifier's schedule: AdamWeightDecay (0.01 but for
    LayerNorm and biases, epsilon 1e-6), linear warm-up and decay, clipping at 1, norbert's
    batches for the seed."""
    import torch
    from transformers import AutoModelForTokenClassification

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(task.labels))
    decay = [p for n, p in model.named_parameters() if "LayerNorm" not in n and "bias" not in n]
    other = [p for n, p in model.named_parameters() if "LayerNorm" in n or "bias" in n]
    optimizer = _adam_weight_decay(torch)([{"params": decay, "weight_decay": 0.01},
                                           {"params": other, "weight_decay": 0.0}],
                                          lr=settings.learning_rate)
    rows = len(task.train["input_ids"])
    steps = tasks.train_steps(rows, settings.num_train_epochs, settings.train_batch_size)
    warmup = int(steps * settings.warmup_proportion)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: k / warmup if k < warmup else 1.0 - k / steps)
    model.train()
    for indices in tasks.batch_order(rows, steps, settings.train_batch_size,
                                     random.Random(seed)):
        batch = tasks.select(task.train, indices)
        labels = np.where(batch["label_weights"] > 0, batch["label_ids"], -100)
        loss = model(input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
                     attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
                     labels=torch.tensor(labels, dtype=torch.long)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(task.evaluation["input_ids"], dtype=torch.long),
                       attention_mask=torch.tensor(task.evaluation["input_mask"],
                                                   dtype=torch.long)).logits
    return task.score(logits.argmax(-1).numpy())["accuracy"]


@pytest.mark.slow
def test_transformers_fine_tuning_agrees(tagged, tiny_checkpoint, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import norbert

    root, vocab = tagged
    _, prefix = tiny_checkpoint
    config = DownstreamConfig(str(root / "train.conllu"), str(root / "eval.conllu"),
                              str(root / "bert_config.json"), vocab)
    bert = BertConfig.from_json_file(config.bert_config_file)
    task = prepare_task(config, SETTINGS, TokenizerOptions(), bert)
    ours = evaluate_model(task, bert, prefix, SETTINGS, {}).metrics()["accuracy"]
    norbert.export_to_hf(checkpoint=prefix, bert_config_file=config.bert_config_file,
                         vocab_file=vocab, do_lower_case=True, output_dir=str(tmp_path / "hf"))
    theirs = [_hf_finetune(str(tmp_path / "hf"), task, SETTINGS, s) for s in SETTINGS.seeds()]
    spread = max(ours["std"], float(np.std(theirs, ddof=1)))
    assert abs(ours["mean"] - float(np.mean(theirs))) <= max(0.01, spread), (ours, theirs)
