"""The plugins the Python side knows, by name: the PyTorch twin of each C
quantizer and model plugin.

A twin registers itself where it is defined (train/twins.py for the shipped
stftcodec, grvq and rvq, train/fsq.py for fsq; a new plugin's module likewise), and train/export.py
and train/make_test_vectors.py only ever look names up here, so adding a
plugin touches no list elsewhere (docs/plugins.md, "The Python twin").
build_quantizer(config) is what train/model.py's Codec is meant to call for
its quantizer (it still builds GroupResidualVQ itself while training runs
import it; the two-line change is verified identical on every checkpoint).

  @registry.quantizer("myvq")
  class MyVQTwin:
      @staticmethod
      def build(config): ...          # the nn.Module, from the model config
      exported = (".embed",)          # buffer suffixes the C plugin binds
      @staticmethod
      def test_cases(): ...           # [(case name, config)] for parity vectors
      @staticmethod
      def vectors(gen, case, config): ...  # {name: array}, {meta}

Quantizer twins: build(config) -> module with forward(z [B, D, T], n_stages)
-> (quantised, codes [B, T, K], loss) and decode(codes, n_codebooks); exported
lists the suffixes of the quantizer's state-dict entries that go into a model
file (besides its parameters); test_cases and vectors make the committed parity
vectors of tests/data/quantizers.safetensors.

Model twins: the C plugin's name and the tensor names it binds are those of
the module export.py writes.

Modules holding twins are imported on first lookup (TWIN_MODULES), so a caller
never needs to know which module defines which plugin.
"""
import importlib
import os
import sys

# Modules that register twins when imported, in this order (the order of the
# parity vectors): a new plugin's twin module is added here once.
TWIN_MODULES = ("twins", "fsq")

_QUANTIZERS = {}
_MODELS = {}
_loaded = False


def _register(table, kind, name):
    def add(twin):
        old = table.get(name)
        # the same class again (its module imported under a second name) is
        # fine; another class under a taken name is a mistake
        if old is not None and old.__qualname__ != twin.__qualname__:
            raise ValueError(f"{kind} twin {name!r} registered twice")
        table[name] = twin
        twin.plugin_name = name
        return twin
    return add


def quantizer(name):
    """Class decorator: the twin of the C quantizer plugin `name`."""
    return _register(_QUANTIZERS, "quantizer", name)


def model(name):
    """Class decorator: the twin of the C model plugin `name`."""
    return _register(_MODELS, "model", name)


def _load():
    global _loaded
    if not _loaded:
        _loaded = True
        here = os.path.dirname(os.path.abspath(__file__))
        if here not in sys.path:
            sys.path.insert(0, here)
        for module in TWIN_MODULES:
            importlib.import_module(module)


def quantizers():
    """{name: twin} of every registered quantizer, in registration order."""
    _load()
    return dict(_QUANTIZERS)


def models():
    _load()
    return dict(_MODELS)


def get_quantizer(name):
    _load()
    if name not in _QUANTIZERS:
        raise KeyError(f"no quantizer twin {name!r} (known: {', '.join(_QUANTIZERS)})")
    return _QUANTIZERS[name]


def get_model(name=None):
    """The model twin called name; None: the only one there is."""
    _load()
    if name is None and len(_MODELS) == 1:
        return next(iter(_MODELS.values()))
    if name not in _MODELS:
        raise KeyError(f"no model twin {name!r} (known: {', '.join(_MODELS)})")
    return _MODELS[name]


def build_quantizer(config):
    """The quantizer module a model config names (config["quantizer"])."""
    return get_quantizer(config["quantizer"]).build(config)
