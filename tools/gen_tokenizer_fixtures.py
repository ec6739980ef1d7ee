#!/usr/bin/env python3
"""Generates tests/fixtures/bpe_golden.json: strings and their GPT-2 BPE ids, for tests/test_bpe.cpp.

The ids come from Hugging Face's slow, pure-Python `transformers.GPT2Tokenizer` (transformers 4.x; the
same algorithm as OpenAI's gpt-2 src/encoder.py, on the `regex` module) loaded from the committed
files in data/assets/gpt2-bpe/ — nothing is downloaded. As a second opinion every case is also run
through a transcription of encoder.py below, and the script stops if the two disagree.

Usage (the output is committed; building and testing never run Python):
    pip install "transformers<5" regex
    HF_HUB_OFFLINE=1 python3 tools/gen_tokenizer_fixtures.py [--shared /work/shared/data]
"""
import argparse
import json
import os
import pathlib
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import regex  # noqa: E402
import transformers  # noqa: E402
from transformers import GPT2Tokenizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASSETS = ROOT / "data" / "assets" / "gpt2-bpe"
OUT = ROOT / "tests" / "fixtures" / "bpe_golden.json"
EOT = "<|endoftext|>"

HANDWRITTEN = [
    "Hello world", " Hello world", "Hello  world", "Hello world ", "Hello world  ", "  Hello", "   ", " ", "",
    "a", " a", "a ", "\t", "\tx", "\t x", " \tx", "x\t\ty", "\n", "\n\n", "\n\n\n", "a\n\nb", "line one\nline two\n",
    "trailing newline\n", "\r\n", "a\r\nb\r\n", " \n ", "  \n\n  x", "x  \t \n y", "\u00a0x", " \u00a0x", "a\u3000b",
    "a\u2003\u2003b", "\x0b\x0c\x1c\x1d\x1e\x1f\x85", "zero\u200bwidth",
    "it's", "It's", "IT'S", "don't", "DON'T", "we're", "WE'RE", "I've", "I'VE", "I'm", "I'M", "we'll", "WE'LL",
    "he'd", "HE'D", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "''", "'''s", " 's", "''s", "'x", "'S",
    "rock'n'roll", "o'clock", "the dogs' bowls", "'twas", "'Tis", "y'all'd've", "l'amour", "it’s (curly)",
    "0", "7", "42", "1234567890", "3.14159", "1,000,000", "100%", "$99.99", "2024-01-02", "12:30pm", "v1.2.3",
    "0xDEADBEEF", "1e-10", "123abc456", " 123", "١٢٣ Arabic-Indic digits", "Ⅻ roman numeral", "½ ¾ ²", "x²+y²",
    "!!!", "?!?!", "...", "—", "--", "-->", "<=>", "@@@", "#hashtag", "@user", "a.b.c", "(parenthetical)", "[1]",
    "{\"json\": true}", "C++", "e.g.", "U.S.A.", "#!/bin/sh", "&&||", "~~~", "`code`", "***bold***", "\\n",
    "Hello, world! How are you today?", "The quick brown fox jumps over the lazy dog.",
    "LoRA: Low-Rank Adaptation of Large Language Models", "GPT-2 uses byte-level BPE with 50,257 tokens.",
    "😀", "😀😀😀", "I ❤️ NY", "👩‍👩‍👧‍👦 family", "🇫🇷 flag", " 🎉", "emoji at end 🚀",
    "日本語のテキスト", "中文测试，句子。", "한국어 텍스트", "你好，世界", "こんにちは 世界",
    "مرحبا بالعالم", "שלום עולם", "Привет, мир!", "Ελληνικά γράμματα", "नमस्ते दुनिया", "สวัสดีครับ",
    "café", "naïve résumé", "Ångström", "Straße", "façade", "Ærøskøbing", "İstanbul", "ǅ titlecase",
    "cafe\u0301", "e\u0301\u0301\u0301", " \u0301", "a\u0308o\u0308u\u0308", "\u0301start",
    "mixed English и русский with 中文 and العربية", "ASCII→Unicode→ASCII", "tab\tseparated\tvalues",
    "def f(x):\n    return x * 2\n", "int main() { return 0; }", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "    indented four", "\t\tindented tabs", "if x == y:\n\n\n    pass", "<html><body>Hi</body></html>",
    EOT, "a" + EOT + "b", " " + EOT + " ", EOT + EOT, "Hello" + EOT + "\n\nWorld", EOT + " it's", "<|endoftext|",
    "<|endoftext|>>", "<<|endoftext|>", "x<|endofte" "xt|>y",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", " " * 40, "-" * 60, "=" * 33, "\n" * 12, "ab" * 30,
    "Supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
]

# Characters chosen to exercise every branch of the pre-tokenisation regex and the class tables.
FUZZ_ALPHABET = [
    " ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000", "\x85", "\x1c", "\u200b", "'", "'", "s", "t",
    "re", "ve", "m", "ll", "d", "S", "T", "a", "e", "Z", "é", "ß", "я", "中", "ا", "0", "7", "٣", "Ⅻ", "½",
    "!", ".", ",", "-", "@", "€", "\u0301", "😀", "\u200d", "🇫", EOT, "hello", "world", "The", "123",
]


def encoder_py(text, enc, ranks, byte_enc, pat, cache):
    """OpenAI gpt-2 src/encoder.py Encoder.encode, transcribed (without special tokens)."""
    def bpe(token):
        if token in cache:
            return cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if bigram not in ranks:
                break
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == bigram[0] and word[i + 1] == bigram[1]:
                    new.append(word[i] + word[i + 1])
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        cache[token] = word
        return word
    ids = []
    for tok in regex.findall(pat, text):
        ids.extend(enc[t] for t in bpe("".join(byte_enc[b] for b in tok.encode("utf-8"))))
    return ids


def make_reference():
    enc = json.loads((ASSETS / "encoder.json").read_text(encoding="utf-8"))
    merges = (ASSETS / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:-1]
    ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_enc = dict(zip(bs, map(chr, cs)))
    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    cache = {}

    def run(text):
        ids = []
        for i, part in enumerate(text.split(EOT)):
            if i:
                ids.append(enc[EOT])
            ids.extend(encoder_py(part, enc, ranks, byte_enc, pat, cache))
        return ids
    return run


def sample_lines(path, k, rng, min_len=1):
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if len(ln) >= min_len]
    return rng.sample(lines, k)


def corpus_cases(shared, rng):
    shakespeare = (shared / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    cases = sample_lines(shared / "tinyshakespeare" / "input.txt", 40, rng)
    for _ in range(6):  # multi-line chunks with blank lines between speeches
        start = rng.randrange(len(shakespeare) - 600)
        cases.append(shakespeare[start:start + rng.randrange(100, 600)])
    cases += sample_lines(shared / "e2e" / "lora_format" / "train.txt", 40, rng)
    cases += [ln + "\n" for ln in sample_lines(shared / "e2e" / "lora_format" / "train.txt", 5, rng)]
    cases += sample_lines(shared / "wikitext-2-partial" / "valid.txt", 15, rng, min_len=2)
    return cases, shakespeare


def fuzz_cases(rng, count):
    return ["".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randrange(1, 24))) for _ in range(count)]


def ids_hash(ids):
    """h = h * 1000003 + id + 1 (mod 2^64): cheap to recompute in C++ (test_bpe.cpp)."""
    h = 0
    for i in ids:
        h = (h * 1000003 + i + 1) & 0xFFFFFFFFFFFFFFFF
    return h


def dump(fixture):
    """JSON (UTF-8, not \\u-escaped) with one case per line, so diffs stay readable."""
    head = {k: v for k, v in fixture.items() if k != "cases"}
    text = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "cases": [\n'
    text += ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in fixture["cases"])
    return text + "\n ]\n}\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="/work/shared/data", help="folder with tinyshakespeare/, e2e/, wikitext-2-partial/")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    rng = random.Random(1234)

    tok = GPT2Tokenizer(vocab_file=str(ASSETS / "encoder.json"), merges_file=str(ASSETS / "vocab.bpe"))
    reference = make_reference()
    corpus, shakespeare = corpus_cases(pathlib.Path(args.shared), rng)
    texts = list(dict.fromkeys(HANDWRITTEN + corpus + fuzz_cases(rng, 150)))

    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == reference(text), f"HF and encoder.py disagree on {text!r}"
        cases.append({"text": text, "ids": ids})
    assert cases[0]["ids"] == [15496, 995]
    full = tok.encode(shakespeare, add_special_tokens=False)

    fixture = {
        "generator": "tools/gen_tokenizer_fixtures.py",
        "tokenizer": "transformers.GPT2Tokenizer (slow, pure Python), vocab_file/merges_file = data/assets/gpt2-bpe/",
        "transformers_version": transformers.__version__,
        "regex_version": regex.__version__,
        "cross_check": "every case also equals a transcription of openai/gpt-2 src/encoder.py",
        "vocab_size": len(tok),
        "eos_id": tok.eos_token_id,
        "tinyshakespeare": {"file": "tinyshakespeare/input.txt", "bytes": len(shakespeare.encode("utf-8")),
                            "num_ids": len(full), "ids_hash": str(ids_hash(full)), "first_ids": full[:32],
                            "hash": "h = h * 1000003 + id + 1 mod 2^64, as a decimal string"},
        "cases": cases,
    }
    pathlib.Path(args.out).write_text(dump(fixture), encoding="utf-8")
    print(f"wrote {args.out}: {len(cases)} cases, tinyshakespeare = {len(full)} ids")


if __name__ == "__main__":
    main()
