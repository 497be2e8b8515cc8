"""What every script shares: flags parsed by absl, errors as one line and a non-zero exit."""

import os
import sys
import warnings
from typing import Callable, List

from absl import app, flags

from norbert.errors import NorbertError

FLAGS = flags.FLAGS
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

flags.DEFINE_bool("verbose", False, "Show the full traceback when something goes wrong.")


def _keep_keras_out_of_home() -> None:
    """Stops ``import tensorflow`` from creating ``~/.keras/keras.json``.

    TensorFlow 2.x imports Keras, which writes a default config into the home folder when none
    exists; norbert uses no Keras, and its scripts write only where they are told. Pointing
    KERAS_HOME at a path that cannot be created makes Keras skip the write (it ignores the
    error) and use its defaults, which is what it would read from the new file anyway. A user's
    own KERAS_HOME or existing keras.json is left alone.
    """
    default = os.path.join(os.path.expanduser("~"), ".keras", "keras.json")
    if "KERAS_HOME" not in os.environ and not os.path.exists(default):
        os.environ["KERAS_HOME"] = os.path.join(os.devnull, "keras")


_keep_keras_out_of_home()


def run(main: Callable[[List[str]], None]) -> None:
    """``absl.app.run(main)``, with ``NorbertError`` and Ctrl-C turned into a short message.

    Bad input exits with status 2 and one line on stderr (``error: ...``) naming the flag or
    file and the fix; ``--verbose`` re-raises instead, with the traceback.
    """

    # Warnings as one line each ("warning: ..."), without the source line under them.
    warnings.formatwarning = lambda message, *args, **kwargs: "warning: %s\n" % message

    def guarded(argv: List[str]) -> None:
        try:
            main(argv)
        except NorbertError as e:
            if FLAGS.verbose:
                raise
            print("error: %s" % e, file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            if FLAGS.verbose:
                raise
            print("interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    app.run(guarded)
