"""The environment `make test` builds is the one the README promises."""

import importlib.metadata as metadata
import re

import pytest


def test_protobuf_uses_a_compiled_backend():
    # The pure-Python backend is several times slower at building records; the requirements
    # keep protobuf >= 4.21 although cloud-tpu-client is installed. protobuf is a
    # dependency: its absence fails here (an ImportError), it is never skipped.
    import google.protobuf
    from google.protobuf.internal import api_implementation

    version = tuple(int(part) for part in google.protobuf.__version__.split(".")[:2])
    assert version >= (4, 21), google.protobuf.__version__
    assert api_implementation.Type() in ("upb", "cpp")


def test_every_runtime_requirement_is_installed():
    pytest.importorskip("tensorflow")
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
                 for d in metadata.distributions()}
    for requirement in metadata.requires("norbert") or []:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        if name == "tensorflow":  # satisfied by the CPU build too
            assert installed & {"tensorflow", "tensorflow-cpu", "tensorflow-tpu"}, requirement
        else:
            assert name in installed, requirement


def test_tpu_client_imports_with_the_fast_protobuf():
    # Skipped only where the client is not installed (the newest-TF environment): an
    # ImportError from inside it (protobuf's, say) fails, as importorskip would hide it.
    import importlib.util

    if importlib.util.find_spec("cloud_tpu_client") is None:
        pytest.skip("cloud-tpu-client is not installed (only the TF 2.15 environment has it)")
    import cloud_tpu_client  # noqa: F401
