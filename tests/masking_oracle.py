"""Google's masked-LM selection rule, written plainly: the oracle the masking tests use.

Upstream's rule on string tokens, with ``random.Random``'s own methods in upstream's order:
'##' pieces join the candidate before them when whole-word masking is on; the candidates are
shuffled; one that would overshoot the budget is skipped; the 80/10/10 choice is per piece.
Kept in one place so that the in-process tests and the whole-word reference driver (a
subprocess) test against the same transcription.
"""


def naive_reference(tokens, prob, max_pred, vocab_words, rng, whole_word):
    """(output tokens, chosen positions, original tokens there), as upstream returns them."""
    groups = []
    for i, t in enumerate(tokens):
        if t in ("[CLS]", "[SEP]"):
            continue
        if whole_word and groups and t.startswith("##"):
            groups[-1].append(i)
        else:
            groups.append([i])
    rng.shuffle(groups)
    budget = min(max_pred, max(1, int(round(len(tokens) * prob))))
    out, chosen = list(tokens), []
    for group in groups:
        if len(chosen) >= budget:
            break
        if len(chosen) + len(group) > budget:
            continue
        for i in group:
            if rng.random() < 0.8:
                out[i] = "[MASK]"
            elif rng.random() < 0.5:
                pass
            else:
                out[i] = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            chosen.append(i)
    chosen.sort()
    return out, chosen, [tokens[i] for i in chosen]
