"""The examples in the docstrings run, on a tiny synthetic cube (no ``+SKIP``).

Each module's examples get ``cube`` and ``truth`` (a 16 x 16 scene of 40 epochs) and
``tmp`` (a temporary folder); an example whose output differs fails here.
"""

import doctest
import importlib

import pytest

from insar_raster.synth import make_scene_cube

MODULES = ["insar_raster", "insar_raster.forecast", "insar_raster.evaluate"]


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    cube, truth = make_scene_cube(shape=(16, 16), n_epochs=40, seed=3)
    return {"cube": cube, "truth": truth, "tmp": tmp_path_factory.mktemp("doctest")}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, namespace):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module, name, globs=dict(namespace))
    assert sum(len(t.examples) for t in tests) > 0, f"{name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
