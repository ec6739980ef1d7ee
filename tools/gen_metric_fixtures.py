#!/usr/bin/env python3
"""Generates tests/fixtures/metrics/e2e_metrics.json: reference scores for data/metrics.h.

Scores a fixed corpus with the Python / Java implementations that the official E2E scorer
(tuetschek/e2e-metrics `measure_scores.py -p`, as run by the LoRA paper) is made of:
  - BLEU, NIST: pymteval.py, the file e2e-metrics' -p mode imports, as shipped (copied, "slightly
    modified": it returns NIST 0 instead of dividing by zero) in the PyPI package gem-metrics-fork;
    also sacrebleu (tokenize 13a, lowercase) and nltk's corpus_bleu / corpus_nist as second opinions;
  - ROUGE-L, CIDEr, METEOR: pycocoevalcap 1.2 (PyPI), i.e. its PTBTokenizer (Stanford CoreNLP 3.4.1 jar,
    needs java), Rouge, Cider and Meteor (meteor-1.5.jar): the full Meteor 1.5 (exact, stem, synonym,
    paraphrase) and the same jar restricted to `-m "exact stem" -w "1.0 0.6"`, which is what the C++
    implements. Everything runs offline (the jars ship inside the pycocoevalcap wheel).

The corpus: 50 meaning representations of the E2E test set (read from the committed
data/assets/e2e/e2e_lora_format.tar.xz, references grouped by MR like e2e-metrics does), each with a
hypothesis made from one of its references (exact copies, dropped / swapped / replaced / inflected
words, truncations, concatenations, near-synonyms), plus an "edge" corpus with 6 more MRs whose
hypotheses are empty or very short. It also records tokenizer and stemmer cases: PTB tokenization
(pycocoevalcap's, punctuation dropped), Meteor's -norm normalization and Snowball stems as the jars
compute them, and mteval tokens as pymteval computes them.

Usage (the output is committed; building and testing never run Python):
    python3 -m venv /tmp/met-venv
    /tmp/met-venv/bin/pip install -r tools/requirements-metrics.txt
    /tmp/met-venv/bin/pip install --no-deps gem-metrics-fork==0.1.dev0
    /tmp/met-venv/bin/python tools/gen_metric_fixtures.py [--out tests/fixtures/metrics/e2e_metrics.json]
Needs java (openjdk 17 works). gem-metrics-fork is installed without its (heavy) dependencies: only
its stdlib-only impl/pymteval.py is loaded, by path.
"""
import argparse
import importlib.metadata as md
import importlib.util
import json
import os
import pathlib
import platform
import random
import subprocess
import tarfile
import tempfile
import threading

import nltk
import sacrebleu
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from nltk.translate.nist_score import corpus_nist as nltk_corpus_nist
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor import meteor as meteor_module
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer import ptbtokenizer
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARCHIVE = ROOT / "data" / "assets" / "e2e" / "e2e_lora_format.tar.xz"
OUT = ROOT / "tests" / "fixtures" / "metrics" / "e2e_metrics.json"
METEOR_DIR = os.path.dirname(os.path.abspath(meteor_module.__file__))
METEOR_JAR = os.path.join(METEOR_DIR, "meteor-1.5.jar")
CORENLP_JAR = os.path.join(os.path.dirname(os.path.abspath(ptbtokenizer.__file__)), "stanford-corenlp-3.4.1.jar")
N_MAIN, N_EDGE = 50, 6
EDGE_HYPS = ["", "   ", ".", "The", "cheap pub", "£ 20 - 25"]
NEAR_SYNONYMS = {"restaurant": "eatery", "cheap": "inexpensive", "near": "close to", "kids": "children",
                 "children": "kids", "located": "situated", "serves": "offers", "food": "cuisine",
                 "rating": "score", "area": "region", "family": "families", "coffee": "café"}


def load_pymteval():
    """Loads gem_metrics_fork/impl/pymteval.py by path (the package __init__ needs heavy deps)."""
    dist = md.distribution("gem-metrics-fork")
    path = next(pathlib.Path(dist.locate_file(f)) for f in dist.files if str(f).endswith("impl/pymteval.py"))
    spec = importlib.util.spec_from_file_location("pymteval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_test_groups():
    """The E2E test references grouped by consecutive identical MR, as e2e-metrics groups them."""
    with tarfile.open(ARCHIVE) as tar:
        text = tar.extractfile("lora_format/test.txt").read().decode("utf-8")
    groups = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        mr, ref = line.split("||", 1)
        if not groups or groups[-1][0] != mr:
            groups.append((mr, []))
        groups[-1][1].append(ref.strip())
    return groups


def perturb(kind, refs, rng, vocab):
    """A hypothesis made from the references of one MR (kind 0..9)."""
    toks = rng.choice(refs).split()
    if kind == 0:
        return " ".join(toks)  # exact copy of a reference
    if kind in (1, 2):  # drop one or two words
        for _ in range(kind):
            del toks[rng.randrange(len(toks))]
    elif kind == 3:  # swap two adjacent words
        i = rng.randrange(len(toks) - 1)
        toks[i], toks[i + 1] = toks[i + 1], toks[i]
    elif kind == 4:  # replace two words by random vocabulary words
        for _ in range(2):
            toks[rng.randrange(len(toks))] = rng.choice(vocab)
    elif kind == 5:  # inflect content words (stem matches)
        for i, t in enumerate(toks):
            if len(t) > 4 and t.isalpha() and rng.random() < 0.5:
                toks[i] = t[:-1] if t.endswith("s") else t + ("s" if rng.random() < 0.5 else "ing")
    elif kind == 6:  # truncate (brevity penalty)
        toks = toks[: max(5, len(toks) // 2)]
    elif kind == 7:  # repeat a clause (longer than the references)
        toks = toks + toks[: len(toks) // 3]
    elif kind == 8:  # first half of one reference, second half of another
        other = rng.choice(refs).split()
        toks = toks[: len(toks) // 2] + other[len(other) // 2:]
    elif kind == 9:  # near-synonyms (only Meteor's synonym/paraphrase modules match them), upper case
        toks = [NEAR_SYNONYMS.get(t.lower(), t) for t in toks]
        toks[0] = toks[0].upper()
    return " ".join(toks)


def build_corpora():
    groups = read_test_groups()
    rng = random.Random(20240601)
    picked = sorted(rng.sample(range(len(groups)), N_MAIN + N_EDGE))
    vocab = sorted({t for _, refs in groups for r in refs for t in r.split()})
    main_refs = [groups[i][1] for i in picked[:N_MAIN]]
    main_hyps = [perturb(k % 10, refs, rng, vocab) for k, refs in enumerate(main_refs)]
    assert all(len(h.split()) >= 5 for h in main_hyps)
    edge_refs = main_refs + [groups[i][1] for i in picked[N_MAIN:]]
    edge_hyps = main_hyps + EDGE_HYPS
    return {"main": (main_hyps, main_refs), "edge": (edge_hyps, edge_refs)}


class MeteorModules(Meteor):
    """pycocoevalcap's Meteor wrapper with extra jar options (e.g. only the exact and stem modules)."""

    def __init__(self, extra):
        self.meteor_cmd = ["java", "-jar", "-Xmx2G", METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"] + extra
        self.meteor_p = subprocess.Popen(self.meteor_cmd, cwd=METEOR_DIR, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lock = threading.Lock()


def coco_scores(hyps, refs):
    """pycocoevalcap as COCOEvalCap.evaluate runs it (PTB tokenization, then the scorers)."""
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    out = {}
    out["rouge_l"], rouge_seg = Rouge().compute_score(gts, res)
    out["cider"], cider_seg = Cider().compute_score(gts, res)
    out["meteor_1.5"], _ = Meteor().compute_score(gts, res)
    out["meteor_1.5_exact_stem"], meteor_seg = MeteorModules(["-m", "exact stem", "-w", "1.0 0.6"]).compute_score(gts, res)
    segments = {"rouge_l": [float(x) for x in rouge_seg], "cider": [float(x) for x in cider_seg],
                "meteor_1.5_exact_stem": [float(x) for x in meteor_seg]}
    return {k: float(v) for k, v in out.items()}, segments


def mteval_counts(pym):
    """pymteval with mteval-v13a's n-gram counts: an empty hypothesis has no tokens (pymteval reads
    one empty token) and a hypothesis shorter than n has 0 n-grams (pymteval counts len - n + 1,
    which can be negative). This is what data/metrics_bleu_nist.cpp implements."""

    def tokenize(self, sent):
        return pym.NGramScore.tokenize(self, sent) if sent.strip() else []

    class BLEU(pym.BLEUScore):
        def append(self, pred_sent, ref_sents):
            length = len(self.tokenize(pred_sent))
            super().append(pred_sent, ref_sents)
            for i in range(self.max_ngram):
                self.cand_lens[i] += max(0, length - i) - (length - i)

    class NIST(pym.NISTScore):
        def append(self, pred_sent, ref_sents):
            super().append(pred_sent, ref_sents)
            for lens in self.cand_lens:
                lens[-1] = max(0, lens[-1])

    BLEU.tokenize = NIST.tokenize = tokenize
    return BLEU, NIST


def mteval_scores(pym, hyps, refs):
    """BLEU and NIST: pymteval (e2e-metrics -p), the same with mteval n-gram counts, sacrebleu,
    nltk on pymteval's tokens."""
    out = {}
    for suffix, (bleu_cls, nist_cls) in {"": (pym.BLEUScore, pym.NISTScore), "_mteval_counts": mteval_counts(pym)}.items():
        bleu, nist = bleu_cls(), nist_cls()
        for h, rs in zip(hyps, refs):
            bleu.append(h, rs)
            nist.append(h, rs)
        out["bleu_pymteval" + suffix], out["nist_pymteval" + suffix] = bleu.score(), nist.score()
    width = max(len(rs) for rs in refs)
    streams = [[rs[k] if k < len(rs) else None for rs in refs] for k in range(width)]
    sb = sacrebleu.metrics.BLEU(tokenize="13a", lowercase=True, smooth_method="none", force=True)
    out["bleu_sacrebleu"] = sb.corpus_score(hyps, streams).score / 100.0
    tok = pym.BLEUScore().tokenize
    lower = lambda s: [t.lower() for t in tok(s)] if s.strip() else []  # noqa: E731
    out["bleu_nltk"] = nltk_corpus_bleu([[lower(r) for r in rs] for rs in refs], [lower(h) for h in hyps])
    out["nist_nltk"] = nltk_corpus_nist([[lower(r) for r in rs] for rs in refs], [lower(h) for h in hyps], n=5)
    return out


def run_java(main_class, classpath, lines, source=None):
    """Runs a class (compiled from `source` if given) with one input line per output line."""
    with tempfile.TemporaryDirectory() as tmp:
        if source:
            (pathlib.Path(tmp) / f"{main_class}.java").write_text(source)
            subprocess.run(["javac", "-cp", classpath, "-d", tmp, f"{tmp}/{main_class}.java"], check=True)
        out = subprocess.run(["java", "-cp", f"{classpath}:{tmp}", main_class], input="\n".join(lines) + "\n",
                             capture_output=True, text=True, check=True).stdout
    return out.split("\n")[: len(lines)]


JAVA_LINES = """import java.io.*;
public class %s {
  public static void main(String[] a) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    %s
    String w;
    while ((w = in.readLine()) != null) { %s }
  }
}"""


def tokenizer_cases():
    probes = [
        "The Eagle is n't cheap . It 's £ 20-25 .", "£20-£25 and £30+ or $ 20 , 5.0 out of 5",
        "family-friendly , non-family-friendly and kid friendly -- yes", "\"Quoted\" words ( in parens ) [ x ]",
        "St. John's is in Cambridge. Mr. Smith went to the U.S. today.",
        "Don't can't won't cannot gonna I'm you're they've we'd she'll", "Café Rouge ; Crowne Plaza Hotel ; nice !",
        "It costs 20 - 25 pounds ... and more .. or less ....", "rating 5/5 , 3 out of 5 stars ; 1-star & 5-star : 4.5 5.",
        "'The Punter' serves 'fast food' at ' cheap ' prices", "It is a low-priced , high-rated , child-friendly place",
        "The price is 20£-25 ; Rouge.6 and 25.yes .nice", "x% x+ x, x; x: x! x? 1:30 5,000 a,b x/ /x x' 'x",
        "-priced -25 25- family- 20-£25 -£25 20--25 a--b -- ---", "'the 't 's 'll wildwood.' average.' 5' 5. 20.",
        ".the .6 5.0. 5.a place.come wildwood's jones' kids' n't isn't", "Caféteria ÉCOLE naïve £ € ¢ – — “ ” ‘ ’ …", "",
    ]
    ptb = PTBTokenizer().tokenize({i: [{"caption": p}] for i, p in enumerate(probes)})
    coco = [ptb[i][0] for i in range(len(probes))]
    norm = run_java("NormLines", METEOR_JAR, probes + coco, JAVA_LINES % (
        "NormLines", "", "out.println(String.join(\" \", edu.cmu.meteor.util.Normalizer.normalizeLine(w, 0, true)"
        ".toLowerCase().trim().split(\"[ \\\\t\\\\n\\\\r\\\\f]+\")));"))
    pym = load_pymteval()
    return [{"text": p, "coco": c, "meteor_norm": n, "meteor_norm_of_coco": nc,
             "mteval": " ".join(t.lower() for t in pym.BLEUScore().tokenize(p)) if p.strip() else ""}
            for p, c, n, nc in zip(probes, coco, norm[: len(probes)], norm[len(probes):])]


def stem_cases(groups):
    """Snowball English stems from the Meteor jar: E2E words it changes, plus classic suffix cases."""
    e2e = sorted({w for _, refs in groups for r in refs for w in r.lower().split() if w.isalpha()})
    classic = ["caresses", "ponies", "ties", "cries", "gas", "gaps", "kiwis", "cats", "bleed", "guaranteed",
               "luxuriated", "hopping", "hoping", "filing", "cry", "by", "say", "toy", "generously",
               "communism", "arsenal", "skies", "dying", "news", "inning", "succeeded", "rational",
               "conditional", "valency", "hesitancy", "digitizer", "operator", "feudalism", "hopefulness",
               "callousness", "decisiveness", "sensibility", "geology", "lessli", "fruitfully", "triplicate",
               "formalize", "electriciti", "hopeful", "goodness", "adjustment", "irritant", "adoption",
               "controlling", "rolling", "probate", "rate", "cease", "yelling", "yay", "youth", "'tis",
               "agreed", "feed", "emerged", "knitting", "consigned", "consolation", "ugly", "only", "early"]
    words = classic + e2e
    stems = run_java("StemLines", METEOR_JAR, words, JAVA_LINES % (
        "StemLines", "org.tartarus.snowball.ext.englishStemmer s = new org.tartarus.snowball.ext.englishStemmer();",
        "s.setCurrent(w); s.stem(); out.println(s.getCurrent());"))
    return [[w, s] for w, s in zip(words, stems) if w in classic or w != s]


def versions():
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.split("\n")[0]
    pkgs = {p: md.version(p) for p in ["nltk", "sacrebleu", "pycocoevalcap", "gem-metrics-fork", "numpy"]}
    return {"python": platform.python_version(), "java": java, **pkgs,
            "meteor_jar": "meteor-1.5.jar (inside pycocoevalcap)", "corenlp_jar": os.path.basename(CORENLP_JAR)}


def to_json(o, ind=0):
    """JSON with one line per scalar list (short ones) or per item (long string lists)."""
    pad = " " * (ind + 1)
    if isinstance(o, dict):
        items = [f"{pad}{json.dumps(k)}: {to_json(v, ind + 1)}" for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * ind + "}"
    if isinstance(o, list) and (any(isinstance(x, (list, dict)) for x in o) or len(json.dumps(o)) > 400):
        return "[\n" + ",\n".join(pad + to_json(x, ind + 1) for x in o) + "\n" + " " * ind + "]"
    return json.dumps(o, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    pym = load_pymteval()
    corpora = build_corpora()
    result = {"description": "Reference scores for data/metrics.h; written by tools/gen_metric_fixtures.py.",
              "versions": versions(), "corpora": {}}
    for name, (hyps, refs) in corpora.items():
        coco, segments = coco_scores(hyps, refs)
        entry = {"scores": {**mteval_scores(pym, hyps, refs), **coco}}
        if name == "main":
            entry.update(hyps=hyps, refs=refs, segments=segments)
            single = [[rs[0]] for rs in refs]
            entry["single_ref_scores"] = {k: v for k, v in mteval_scores(pym, hyps, single).items()}
        else:  # the main corpus followed by these segments
            entry.update(extra_hyps=hyps[N_MAIN:], extra_refs=refs[N_MAIN:])
        result["corpora"][name] = entry
    result["tokenizer_cases"] = tokenizer_cases()
    result["stem_cases"] = stem_cases(read_test_groups())
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(to_json(result) + "\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    for name, entry in result["corpora"].items():
        print(name, json.dumps(entry["scores"], indent=None))


if __name__ == "__main__":
    nltk.download = None  # never reach the network
    main()
