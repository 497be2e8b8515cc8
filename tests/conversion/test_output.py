"""What both directions share (``norbert.conversion.output``): the report. The staged output
folder is tested through both commands in test_convert_scripts.py."""


def test_long_left_out_lists_are_counted_by_last_part():
    from norbert.conversion.output import _brief

    names = ["layer_%d/kernel/%s" % (i, slot) for i in range(5) for slot in ("adam_m", "adam_v")]
    assert _brief(names + ["global_step"]) == "5 x .../adam_m, 5 x .../adam_v, global_step"
    assert _brief(["a/adam_m", "global_step"]) == "a/adam_m, global_step"  # short: as it is
