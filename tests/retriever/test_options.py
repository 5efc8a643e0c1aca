"""Declared, typed component options: one parser for CLI strings, SDK values and manifests."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from retriever.errors import UsageError
from retriever.options import PATH, Option, parse_pairs, resolve_options
from retriever.plugin_host import get_registry
from retriever.specs import EncoderSpec, IndexerSpec

KINDS = ("encoder", "indexer", "ocr")


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("OFF", False),
    (True, True), (False, False), (1, True), (0, False),
])
def test_bool_words_from_the_cli_and_values_from_the_sdk(text, expected):
    assert Option("flag", bool, False).parse(text, "encoder 'x'") is expected


@pytest.mark.parametrize("bad", ["maybe", "", "2", 2, "truee", None, 1.0])
def test_anything_else_is_not_a_bool(bad):
    with pytest.raises(UsageError, match=r"encoder 'x': option flag=.* is invalid") as info:
        Option("flag", bool, False).parse(bad, "encoder 'x'")
    assert "true or false" in info.value.hint


def test_numbers_paths_and_choices():
    assert Option("n", int, 1, minimum=1).parse("16") == 16
    assert Option("n", int, 1).parse(-3) == -3
    for bad in ("1.5", 1.5, "ten", True, "0"):
        with pytest.raises(UsageError, match="option n="):
            Option("n", int, 1, minimum=1).parse(bad)
    assert Option("x", float, 0.5).parse("0.25") == 0.25 and Option("x", float).parse(2) == 2.0
    with pytest.raises(UsageError):
        Option("x", float, 0.5).parse("nan")
    assert Option("p", PATH).parse(Path("/a/b")) == "/a/b"
    with pytest.raises(UsageError):
        Option("s", str, "a").parse(3)  # the SDK gets no silent str()
    kind = Option("kind", str, None, choices=("flat", "hnsw"))
    assert kind.parse("HNSW") == "hnsw" and kind.parse(None) is None
    with pytest.raises(UsageError, match="kind='lsh'") as info:
        kind.parse("lsh")
    assert "one of flat, hnsw" in info.value.hint
    assert Option("psm", int, 3, choices=(3, 6)).parse("6") == 6


def test_unknown_options_name_the_component_and_what_it_takes():
    declared = (Option("model", str), Option("patches", bool, False))
    with pytest.raises(UsageError, match="encoder 'clip/x' has no option nonsense") as info:
        resolve_options("encoder 'clip/x'", declared, {"nonsense": "1"})
    assert "model (str)" in info.value.hint and "patches (bool, default false)" in info.value.hint
    assert resolve_options("c", declared, {"patches": "yes"}) == {"patches": True}


def test_parse_pairs_keeps_text_and_rejects_bad_pairs():
    assert parse_pairs(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UsageError, match="bad -O 'nokey'"):
        parse_pairs(["nokey"], "-O")
    with pytest.raises(UsageError):
        parse_pairs(["=1"])


def test_a_declared_spec_parses_before_calling_the_factory():
    calls = []
    spec = EncoderSpec("t/x", lambda **kw: calls.append(kw) or kw,
                       options=(Option("trust_remote_code", bool, False),))
    assert spec.create(trust_remote_code="false") == {"trust_remote_code": False}
    with pytest.raises(UsageError, match="trust_remote_code='maybe'"):
        spec.create(trust_remote_code="maybe")
    with pytest.raises(UsageError, match="has no option nonsense"):
        spec.create(nonsense="1")
    assert len(calls) == 1


def test_an_undeclared_spec_falls_back_to_its_signature():
    def factory(dim: int = 1024, scale=1.0, flag=False, name="x"):
        return dim, scale, flag, name

    spec = EncoderSpec("t/y", factory)
    assert spec.create(dim="64", scale="0.5", flag="off", name="7") == (64, 0.5, False, "7")
    assert spec.create(dim=8) == (8, 1.0, False, "x")
    with pytest.raises(UsageError, match="has no option nonsense"):
        spec.create(nonsense="1")
    with pytest.raises(UsageError, match="option dim='x'"):
        spec.create(dim="x")


def test_a_factory_forwarding_bad_keywords_gives_a_usage_error():
    class Encoder:
        def __init__(self, *, size: int = 1) -> None:
            self.size = size

    spec = EncoderSpec("t/z", lambda **options: Encoder(**options))
    assert spec.create(size=2).size == 2
    with pytest.raises(UsageError, match="unexpected keyword argument 'nonsense'"):
        spec.create(nonsense=1)


def test_indexer_specs_split_build_and_search_options():
    spec = IndexerSpec("t/ix", lambda path, manifest, **kw: kw, options=(
        Option("index_type", str, None, choices=("flat", "hnsw")),
        Option("nprobe", int, None, minimum=1, stage="search")))
    assert spec.split_options({"index_type": "HNSW", "nprobe": "4"}) == (
        {"index_type": "hnsw"}, {"nprobe": 4})
    assert spec.create(path="p", manifest=None, nprobe="2") == {"nprobe": 2}
    assert spec.search_options({"nprobe": "8"}) == {"nprobe": 8}
    with pytest.raises(UsageError, match="index_type cannot change per search"):
        spec.search_options({"index_type": "flat"})


def test_every_builtin_component_declares_its_options():
    registry = get_registry()
    for kind in KINDS:
        for spec in registry.specs(kind):
            assert spec.options is not None, f"{kind} {spec.name} declares no options"
            for option in spec.options:
                assert option.help, f"{kind} {spec.name}: {option.name} has no help"


def _constructor(kind: str, name: str):
    if kind == "indexer":
        module = {"faiss": "indexers.faiss.indexer", "lancedb": "indexers.lancedb.indexer"}
        if name not in module:
            return None
        import importlib

        mod = importlib.import_module(module[name])
        return getattr(mod, {"faiss": "FaissIndexer", "lancedb": "LanceDBIndexer"}[name])
    if kind == "ocr":
        from plugins.tesseract import TesseractEngine

        return TesseractEngine
    family = name.split("/")[0]
    if family == "text":
        from plugins.text.minilm import MiniLMLineEncoder

        return MiniLMLineEncoder
    if family in ("colpali", "colqwen2", "colqwen2.5"):
        from plugins.colpali.encoder import ColVisionEncoder

        return ColVisionEncoder
    if family in ("clip", "siglip"):
        from plugins.clip.encoder import CLIPEncoder

        return CLIPEncoder
    from plugins.vitamin.encoder import VitaminEncoder

    return VitaminEncoder


def test_declared_defaults_are_the_constructors_own():
    """A declaration that drifted from the code would list wrong defaults."""
    pytest.importorskip("torch")
    registry = get_registry()
    for kind in KINDS:
        for spec in registry.specs(kind):
            cls = _constructor(kind, spec.name)
            if cls is None:
                continue
            params = inspect.signature(cls).parameters
            for option in spec.options:
                assert option.name in params, f"{spec.name}: {cls.__name__} has no {option.name}"
                assert params[option.name].default == option.default, (spec.name, option.name)


def test_a_bad_declaration_is_a_plugin_error():
    from retriever.errors import PluginError

    with pytest.raises(PluginError, match="type must be"):
        Option("x", list)
    with pytest.raises(PluginError, match="stage must be"):
        Option("x", int, stage="later")
