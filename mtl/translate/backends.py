"""Translator backends: one small interface, three ways to get an English translation of a search query.

    translator = BACKENDS["seq2seq"]("models/madlad400-3b-mt", device="cuda")
    translator.translate(["zapatos rojos", "обувь"], ["es", "ru"])      # -> ["red shoes", "shoes"]

- `seq2seq`: an HF translation model from a local folder. The family is detected from `config.model_type` and the
  tokenizer, and its language-code convention applied: MADLAD-400 reads a `<2en> ` prefix; NLLB-200 and M2M100 need
  the source language set on the tokenizer (so they are generated one source language at a time) and English forced
  as the first generated token; Marian/Opus-MT (`opus-mt-mul-en`) and unknown families read the bare text.
- `llm`: a causal LM prompted to translate (an instruction-tuned one asked, a base one shown five examples), greedy,
  left-padded batches, first line of the reply.
- `column`: no model; the translations already in the input file are the only ones (`translate` returns "").

`model_id` names a model and its generation settings; the translation cache is keyed by it, so changing the model,
`max_new_tokens`, beams or the prompt never reuses another setting's translations.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

NLLB_CODES = {
    "ar": "arb_Arab", "bn": "ben_Beng", "cs": "ces_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek",
    "en": "eng_Latn", "es": "spa_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "he": "heb_Hebr",
    "hi": "hin_Deva", "hu": "hun_Latn", "id": "ind_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "ko": "kor_Hang",
    "ms": "zsm_Latn", "nb": "nob_Latn", "nl": "nld_Latn", "no": "nob_Latn", "pl": "pol_Latn", "pt": "por_Latn",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "sv": "swe_Latn", "ta": "tam_Taml", "te": "tel_Telu", "th": "tha_Thai",
    "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab", "vi": "vie_Latn", "zh": "zho_Hans",
    "zh-tw": "zho_Hant", "zh-hk": "zho_Hant",
}
"""ISO-639-1 (the records' `language`) -> NLLB-200 code (ISO-639-3 + script). Arabic is Modern Standard `arb`."""

LANGUAGE_NAMES = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ms": "Malay",
    "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sv": "Swedish", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
}
"""For the LLM prompt; a language not listed is left unnamed ("this e-commerce search query")."""

LLM_PROMPT = ("Translate this {language}e-commerce search query into English. Reply with the translation only.\n"
              "Query: {text}\nEnglish:")
"""For an instruction-tuned model (its tokenizer has a chat template, which wraps this)."""

LLM_FEW_SHOT = (("German", "kinder regenjacke wasserdicht", "kids rain jacket waterproof"),
                ("Spanish", "funda para iphone 13", "case for iphone 13"),
                ("Japanese", "ワイヤレスイヤホン", "wireless earphones"),
                ("French", "tapis de yoga antidérapant", "non-slip yoga mat"),
                ("Korean", "캠핑 의자", "camping chair"))
LLM_BASE_PREFIX = ("Translate e-commerce search queries into English.\n\n"
                   + "".join(f"{name}: {query}\nEnglish: {english}\n\n" for name, query, english in LLM_FEW_SHOT))
LLM_BASE_PROMPT = LLM_BASE_PREFIX + "{language}: {text}\nEnglish:"
"""For a base model (no chat template), such as the embedded Gemma-3 270M: asked as LLM_PROMPT asks, it mostly
echoes the query or writes "Search: <query>"; after five worked examples (written for this prompt, not taken from
any dataset) it translates (benchmarks/results/translate-llm-*.md)."""

FAMILIES = ("madlad", "nllb", "m2m100", "marian", "generic")


class Translator(Protocol):
    model_id: str
    """Names the model and its generation settings; translations are cached under it."""

    def translate(self, texts: list[str], source_languages: list[str]) -> list[str]:
        """English translations of `texts` (ISO-639-1 `source_languages`, one per text), in order. May raise: the
        caller retries the batch in halves and records texts that still fail."""
        ...


@dataclass
class GenerationGroup:
    """Texts generated together: one `generate` call with one tokenizer source language."""

    indices: list[int]
    inputs: list[str]
    src_lang: str | None = None
    generate_kwargs: dict = field(default_factory=dict)


def base_language(language: str) -> str:
    """`pt-BR` / `pt_br` / `PT` -> `pt`."""
    return language.strip().lower().replace("_", "-").split("-")[0]


def nllb_code(language: str) -> str:
    key = language.strip().lower().replace("_", "-")
    code = NLLB_CODES.get(key) or NLLB_CODES.get(base_language(language))
    if code is None:
        raise ValueError(f"no NLLB-200 code for language {language!r}; add it to mtl.translate.backends.NLLB_CODES")
    return code


def detect_family(config, tokenizer) -> str:
    """One of FAMILIES, from the model config and tokenizer. NLLB-200 and M2M100 share `model_type` m2m_100 and
    differ in their tokenizer; MADLAD-400 is a plain T5 whose vocabulary has `<2xx>` target tokens."""
    model_type = getattr(config, "model_type", "")
    tokenizer_class = type(tokenizer).__name__
    if model_type == "m2m_100":
        if tokenizer_class.startswith("Nllb"):
            return "nllb"
        if hasattr(tokenizer, "get_lang_id"):
            return "m2m100"
    if model_type in ("t5", "mt5", "umt5") and _has_token(tokenizer, "<2en>"):
        return "madlad"
    if model_type == "marian":
        return "marian"
    return "generic"


def plan_generation(family: str, tokenizer, texts: list[str], languages: list[str]) -> list[GenerationGroup]:
    """How to generate English for `texts` with a model of `family`: input strings, source-language setting and
    extra `generate` arguments, grouped so each group has one source language where the family needs one."""
    if family == "madlad":
        # MADLAD names only the target language, as a prefix token; the source is inferred from the text.
        return [GenerationGroup(list(range(len(texts))), [f"<2en> {t}" for t in texts])]
    if family not in ("nllb", "m2m100"):
        return [GenerationGroup(list(range(len(texts))), list(texts))]

    if family == "nllb":
        english = tokenizer.convert_tokens_to_ids("eng_Latn")
    else:
        english = tokenizer.get_lang_id("en")
    by_language: dict[str, list[int]] = {}
    for i, language in enumerate(languages):
        by_language.setdefault(base_language(language) if family == "m2m100" else nllb_code(language), []).append(i)
    groups = []
    for code, indices in by_language.items():
        if family == "nllb" and tokenizer.convert_tokens_to_ids(code) == tokenizer.unk_token_id:
            raise ValueError(f"the NLLB tokenizer has no language token {code!r}")
        groups.append(GenerationGroup(indices, [texts[i] for i in indices], src_lang=code,
                                      generate_kwargs={"forced_bos_token_id": english}))
    return groups


class Seq2SeqTranslator:
    """An encoder-decoder translation model (MADLAD-400, NLLB-200, M2M100, Marian/Opus-MT) from a local folder.
    The weights load on the first `translate`, so a run whose texts are all cached never loads them."""

    def __init__(self, model_path: str | Path, device: str = "cpu", max_new_tokens: int | None = None,
                 num_beams: int = 1, max_input_tokens: int = 128, model_id: str | None = None):
        self.path = _model_folder(model_path, "seq2seq")
        self.device, self.num_beams, self.max_input_tokens = device, num_beams, max_input_tokens
        self.max_new_tokens = max_new_tokens or 64
        self.model_id = model_id or _model_id("seq2seq", self.path, self.max_new_tokens, num_beams)
        self.model = self.tokenizer = self.family = None

    def load(self) -> None:
        if self.model is not None:
            return
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        with _loading(self.path):
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
            self.model = AutoModelForSeq2SeqLM.from_pretrained(str(self.path), dtype=_dtype(self.device))
            self.model.to(self.device).eval()
        self.family = detect_family(self.model.config, self.tokenizer)
        log.info("%s: %s translation model, %s", self.path, self.family, self.model_id)
        if self.family == "generic":
            log.warning("%s: model type %r has no known language-code convention; it reads the bare source text",
                        self.path, self.model.config.model_type)

    def translate(self, texts: list[str], source_languages: list[str]) -> list[str]:
        import torch

        self.load()
        out = [""] * len(texts)
        for group in plan_generation(self.family, self.tokenizer, texts, source_languages):
            if group.src_lang is not None:
                self.tokenizer.src_lang = group.src_lang
            batch = self.tokenizer(group.inputs, return_tensors="pt", padding=True, truncation=True,
                                   max_length=self.max_input_tokens).to(self.device)
            with torch.inference_mode():
                generated = self.model.generate(**batch, **group.generate_kwargs, max_new_tokens=self.max_new_tokens,
                                                num_beams=self.num_beams, do_sample=False)
            for i, text in zip(group.indices, self.tokenizer.batch_decode(generated, skip_special_tokens=True)):
                out[i] = text.strip()
        return out


class LLMTranslator:
    """A causal LM from a local folder (or the embedded backbone), prompted to translate: asked in its chat template
    if it has one, else shown LLM_BASE_PROMPT's examples; greedy and short. Loads lazily."""

    def __init__(self, model_path: str | Path, device: str = "cpu", max_new_tokens: int | None = None,
                 num_beams: int = 1, model_id: str | None = None):
        self.path = _model_folder(model_path)
        self.device, self.num_beams = device, num_beams
        self.max_new_tokens = max_new_tokens or 32
        self.model_id = model_id or _model_id("llm", self.path, LLM_PROMPT, LLM_BASE_PROMPT, self.max_new_tokens,
                                              num_beams)
        self.model = self.tokenizer = None
        self._prefix_ids = self._prefix_cache = self._newlines = None

    def load(self) -> None:
        if self.model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _loading(self.path):
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
            # Batched generation continues every row from its last prompt token, so prompts must end together.
            self.tokenizer.padding_side = "left"
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model = AutoModelForCausalLM.from_pretrained(str(self.path), dtype=_dtype(self.device))
            self.model.to(self.device).eval()
        log.info("%s: translating by prompting, %s", self.path, self.model_id)

    def prompts(self, texts: list[str], source_languages: list[str]) -> list[str]:
        """The model's input text per query: the instruction inside the chat template when the tokenizer has one,
        else the few-shot LLM_BASE_PROMPT."""
        self.load()
        out = []
        for text, language in zip(texts, source_languages):
            name = LANGUAGE_NAMES.get(base_language(language))
            if not self.tokenizer.chat_template:
                out.append(LLM_BASE_PROMPT.format(language=name or "Query", text=text))
                continue
            prompt = LLM_PROMPT.format(language=f"{name} " if name else "", text=text)
            out.append(self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                          add_generation_prompt=True))
        return out

    def translate(self, texts: list[str], source_languages: list[str]) -> list[str]:
        import torch

        prompts = self.prompts(texts, source_languages)
        if self.tokenizer.chat_template:
            # A chat template writes its own <bos>; adding another would give the model a prompt it never saw.
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch, extra = dict(batch.to(self.device)), {}
        else:
            batch, extra = self._few_shot_batch(prompts)
        with torch.inference_mode():
            generated = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                            do_sample=False, pad_token_id=self.tokenizer.pad_token_id, **extra)
        replies = self.tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        return [next(iter(reply.strip().splitlines()), "").strip() for reply in replies]

    def _few_shot_batch(self, prompts: list[str]) -> tuple[dict, dict]:
        """Inputs of `generate` for few-shot prompts: the examples' keys and values computed once and reused.

        The examples are 88 of the embedded model's ~100 tokens a prompt; computed once, each batch reads only its
        queries' tails. Each batch is `<bos> + examples` (cached) followed by its query's tail, left-padded *after* the
        examples; the attention mask hides that padding and positions follow the mask, so a row sees what it would
        see alone. Only the first line is kept, so the batch stops once every row has written one: a base model
        would otherwise go on to invent the next example, max_new_tokens long."""
        import copy

        import torch

        if self._newlines is None:
            # transformers' stop_strings re-derive this from the whole vocabulary on every call (3 s a batch for
            # Gemma's 262k tokens, more than generating); ending a row at any token that writes a newline, as
            # generate ends it at <eos>, needs the list once.
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            self._newlines = [i for i, text in enumerate(texts) if "\n" in text]
        eos = self.tokenizer.eos_token_id
        stop = {"eos_token_id": [*([] if eos is None else [eos]), *self._newlines]}
        if self._prefix_ids is None:
            self._prefix_ids = self.tokenizer(LLM_BASE_PREFIX, return_tensors="pt").input_ids.to(self.device)
        ids = self._prefix_ids
        tail = self.tokenizer([p[len(LLM_BASE_PREFIX):] for p in prompts], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(self.device)
        # A sliding-window layer counts cache slots, padding included, so padding inside the window would hide real
        # tokens from a row once the sequence outgrows it; beam search expands its inputs itself. Either way: whole
        # prompts, padded at the start, no shared cache.
        window = getattr(self.model.config, "sliding_window", None)
        if self.num_beams > 1 or (window and ids.shape[1] + tail.input_ids.shape[1] + self.max_new_tokens > window):
            return dict(self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)), stop
        if self._prefix_cache is None:
            with torch.inference_mode():
                self._prefix_cache = self.model(input_ids=ids, use_cache=True).past_key_values
        n = len(prompts)
        cache = copy.deepcopy(self._prefix_cache)  # generate extends the cache it is given
        cache.batch_repeat_interleave(n)
        ones = torch.ones(n, ids.shape[1], dtype=tail.attention_mask.dtype, device=self.device)
        return ({"input_ids": torch.cat([ids.expand(n, -1), tail.input_ids], dim=1),
                 "attention_mask": torch.cat([ones, tail.attention_mask], dim=1)},
                {"past_key_values": cache, **stop})


class ColumnTranslator:
    """No model: the input's own `translated_query` column is the only source of translations."""

    model_id = "column"

    def __init__(self, model_path=None, **_settings):
        """Takes the other backends' arguments, so all three are built alike, and ignores them."""

    def translate(self, texts: list[str], source_languages: list[str]) -> list[str]:
        return [""] * len(texts)


BACKENDS = {"seq2seq": Seq2SeqTranslator, "llm": LLMTranslator, "column": ColumnTranslator}


def _has_token(tokenizer, token: str) -> bool:
    return token in tokenizer.get_vocab()


@contextlib.contextmanager
def _loading(path: Path):
    """Whatever transformers raises while loading a model folder (a broken config, missing weights, an unknown
    architecture) becomes one ConfigError naming the folder: the run cannot go on without the model."""
    from mtl.errors import ConfigError

    try:
        yield
    except Exception as err:  # noqa: BLE001 - transformers raises many types here; all mean "cannot load"
        message = " ".join(str(err).split())[:300] or type(err).__name__
        raise ConfigError(f"translation model {path}: cannot be loaded: {type(err).__name__}: {message}") from None


def _model_folder(model_path, backend: str = "llm") -> Path:
    """A local HF folder, or for `llm` the embedded backbone's spec (its converted folder: the one model every
    install has; a decoder-only LM, so no `seq2seq` model)."""
    from mtl.backbone import EMBEDDED, resolve
    from mtl.errors import ConfigError

    if str(model_path) in EMBEDDED:
        if backend != "llm":
            raise ConfigError(f"translation model {model_path}: the embedded backbone is a decoder-only LM, not a "
                              f"{backend} translation model: use --backend llm")
        return resolve(str(model_path))
    path = Path(model_path).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"translation model {model_path}: not a local Hugging Face folder (no config.json)")
    return path


def _model_id(backend: str, path: Path, *settings) -> str:
    """`backend:<folder name>@<hash of config.json and generation settings>`: readable, known without loading the
    weights, and distinct for another architecture or setting. Two different checkpoints with the same folder name
    and config.json (a fine-tuned copy) need an explicit `model_id`."""
    from mtl.errors import ConfigError

    try:
        config = (path / "config.json").read_bytes()
    except OSError as err:
        raise ConfigError(f"translation model {path}: cannot read config.json: {err.strerror or err}") from None
    digest = hashlib.sha256(config + repr(settings).encode()).hexdigest()[:10]
    return f"{backend}:{path.resolve().name}@{digest}"


def _dtype(device: str):
    import torch

    return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
