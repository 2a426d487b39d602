"""Request and response bodies (text-embeddings-inference, Hugging Face Inference API, OpenAI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, model_validator

# Request fields take JSON's own types, as text-embeddings-inference's parser does: `true`, not `1`,
# `0.0` or `"yes"`; `5`, not `5.0` or `"5"` (pydantic's lax mode would accept and convert those).
Direction = Literal["Left", "Right", "left", "right"]
Inputs = str | list[str]

_MODEL = Field(default=None, description="Id of a served model; default: the first served model of the route's kind")
_TRUNCATE = Field(default=None, description="Truncate inputs longer than the model's maximum length; when false "
                                            "they are a 422 error. Default: the server's --auto-truncate setting")
_PROMPT = Field(default=None, description="Key of the model's `prompts` prepended to every input (default: the "
                                          "model's default prompt, if any)")
_DIMENSIONS = Field(default=None, ge=1, description="Keep the first dimensions of each embedding (Matryoshka)")


class ErrorResponse(BaseModel):
    """Every error: ``error`` text and ``error_type``; a loading model adds ``estimated_time`` (seconds)."""

    error: str
    error_type: str
    estimated_time: float | None = None


class OpenAIError(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """Errors of the OpenAI route: ``{"error": {"message", "type", "param", "code"}}``."""

    error: OpenAIError


class EmbedRequest(BaseModel):
    """``POST /embed``."""

    inputs: Inputs
    truncate: StrictBool | None = _TRUNCATE
    truncation_direction: Direction = "Right"
    prompt_name: str | None = _PROMPT
    normalize: StrictBool = True
    dimensions: StrictInt | None = _DIMENSIONS
    model: str | None = _MODEL


class EmbedSparseRequest(BaseModel):
    """``POST /embed_sparse``."""

    inputs: Inputs
    truncate: StrictBool | None = _TRUNCATE
    truncation_direction: Direction = "Right"
    prompt_name: str | None = _PROMPT
    model: str | None = _MODEL


class EmbedAllRequest(BaseModel):
    """``POST /embed_all``: the token vectors of each input (a multi-vector model's, or a dense model's raw
    token embeddings). A multi-vector model encodes documents, queries when ``prompt_name`` is ``query``."""

    inputs: Inputs
    truncate: StrictBool | None = _TRUNCATE
    truncation_direction: Direction = "Right"
    prompt_name: str | None = _PROMPT
    model: str | None = _MODEL


class SparseValue(BaseModel):
    """One active dimension of a sparse embedding."""

    index: int
    value: float


class RerankRequest(BaseModel):
    """``POST /rerank``."""

    query: str
    texts: list[str]
    truncate: StrictBool | None = _TRUNCATE
    truncation_direction: Direction = "Right"
    raw_scores: StrictBool = Field(default=False, description="Logits instead of the model's activation (sigmoid)")
    return_text: StrictBool = False
    model: str | None = _MODEL


class RerankDocument(BaseModel):
    """A document as an object (Cohere v1 and Jina accept ``{"text": ...}``)."""

    text: str


class RerankBody(BaseModel):
    """The body Cohere's and Jina's rerank APIs take."""

    query: str
    documents: list[str | RerankDocument]
    model: str | None = Field(default=None, description="Id of a served reranker (default: the first)")
    top_n: StrictInt | None = Field(default=None, ge=1, description="Return only the best top_n results")
    return_documents: StrictBool = Field(default=False, description="Include each document's text")
    max_tokens_per_doc: StrictInt | None = Field(default=None, description="Accepted; documents are truncated to the "
                                                                      "model's maximum length")


class Rank(BaseModel):
    """One reranked text: its position in ``texts``, its score and (``return_text``) the text."""

    index: int
    score: float
    text: str | None = None


class SimilarityInput(BaseModel):
    """``source_sentence`` (or ``sourceSentence``) compared with each of ``sentences``."""

    source_sentence: str | None = Field(default=None, description="The sentence to compare the others with")
    sourceSentence: str | None = Field(default=None, description="Alias of source_sentence; one of the two is required")
    sentences: list[str]

    @model_validator(mode="after")
    def _one_source(self) -> SimilarityInput:
        if self.source_sentence is None and self.sourceSentence is None:
            raise ValueError("source_sentence (or sourceSentence) is required")
        return self

    @property
    def source(self) -> str:
        """The source sentence, whichever spelling carried it."""
        return self.source_sentence if self.source_sentence is not None else str(self.sourceSentence)


class SimilarityParameters(BaseModel):
    """Options of ``POST /similarity``."""

    truncate: StrictBool | None = _TRUNCATE
    truncation_direction: Direction = "Right"
    prompt_name: str | None = _PROMPT


class SimilarityRequest(BaseModel):
    """``POST /similarity``: one score per sentence."""

    inputs: SimilarityInput
    parameters: SimilarityParameters | None = None
    model: str | None = _MODEL


class TokenizeRequest(BaseModel):
    """``POST /tokenize``."""

    inputs: Inputs
    add_special_tokens: StrictBool = True
    prompt_name: str | None = None
    model: str | None = _MODEL


class SimpleToken(BaseModel):
    """One token; ``start``/``stop`` are character offsets (``null`` for special tokens)."""

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class OpenAIRequest(BaseModel):
    """``POST /v1/embeddings`` (always L2-normalized, as OpenAI's embeddings are)."""

    input: Inputs
    model: str | None = _MODEL
    user: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = _DIMENSIONS
    truncate: StrictBool = Field(default=True, description="Truncate inputs longer than the model's maximum length "
                                                     "(default true, so long documents embed as clients send "
                                                     "them); false: 422 for too long an input")


class OpenAIEmbedding(BaseModel):
    """One embedding: floats, or base64 of little-endian float32 bytes."""

    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str
    index: int


class OpenAIUsage(BaseModel):
    """Tokens the inputs took."""

    prompt_tokens: int
    total_tokens: int


class OpenAIResponse(BaseModel):
    """``POST /v1/embeddings`` answer."""

    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class Info(BaseModel):
    """``GET /info``: the model and the server's limits."""

    model_id: str
    model_sha: str | None = None
    model_dtype: str = "float32"
    served_model_name: str
    model_type: dict[str, Any]
    model_state: str
    max_concurrent_requests: int
    max_input_length: int | None
    max_batch_tokens: int
    max_batch_requests: int | None = None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int = 1
    version: str
    sha: str | None = None
    docker_label: str | None = None
    models: list[str]


class RankInput(BaseModel):
    """HF route: a query and texts to rerank (reranker models)."""

    query: str
    texts: list[str]


class HFParameters(BaseModel):
    """HF route options; each applies where it means something for the model's kind."""

    normalize: StrictBool | None = Field(default=None, description="L2-normalize embeddings (default: as `encode` returns)")
    prompt_name: str | None = _PROMPT
    truncate: StrictBool | None = Field(default=None, description="Default true (inputs are truncated as `encode` does)")
    truncation_direction: Direction = "Right"
    dimensions: StrictInt | None = _DIMENSIONS
    raw_scores: StrictBool = False
    return_text: StrictBool = False


class HFOptions(BaseModel):
    """The Inference API's older body options, same as the ``x-use-cache``/``x-wait-for-model`` headers."""

    use_cache: StrictBool | None = None
    wait_for_model: StrictBool | None = None


class HFRequest(BaseModel):
    """``POST /models/{model_id}``.

    ``inputs``: a text or texts (feature extraction: dense embeddings, or sparse ``[{index, value}]``);
    ``{source_sentence, sentences}`` (sentence similarity: one score per sentence, also for rerankers);
    ``{query, texts}`` (reranker: ranks); ``[[text, text], ...]`` (reranker: one score per pair).
    Options go under ``parameters`` or, as the feature-extraction task sends them, at the top level
    (the top level wins when both are given).
    """

    inputs: str | list[str] | SimilarityInput | RankInput | list[tuple[str, str]]
    parameters: HFParameters | None = None
    options: HFOptions | None = None
    normalize: StrictBool | None = None
    prompt_name: str | None = None
    truncate: StrictBool | None = None
    truncation_direction: Direction | None = None
    dimensions: StrictInt | None = _DIMENSIONS

    def merged_parameters(self) -> HFParameters:
        """``parameters`` with the top-level options laid over them."""
        top = {k: getattr(self, k) for k in ("normalize", "prompt_name", "truncate", "truncation_direction",
                                             "dimensions") if getattr(self, k) is not None}
        base = self.parameters or HFParameters()
        return base.model_copy(update=top) if top else base


class PredictRequest(BaseModel):
    """``POST /predict``: a pair, or a list of pairs, scored by a reranker or classifier."""

    inputs: tuple[str, str] | list[tuple[str, str]] | str | list[str]
    truncate: StrictBool | None = _TRUNCATE
    truncation_direction: Direction = "Right"
    raw_scores: StrictBool = False
    model: str | None = _MODEL


class Prediction(BaseModel):
    """One label's score."""

    score: float
    label: str


class DecodeRequest(BaseModel):
    """``POST /decode``: token ids back to text."""

    ids: list[StrictInt] | list[list[StrictInt]]
    skip_special_tokens: StrictBool = True
    model: str | None = _MODEL


FloatsOrNested = list[float] | list[list[float]]
HFResponse = (list[float] | list[list[float]] | list[list[list[float]]] | list[SparseValue]
              | list[list[SparseValue]] | list[Rank])
