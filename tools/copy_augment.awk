# Copy-from-context augmentation of one-document-per-line input (newlines inside as \001).
# mode=repeat: a chosen document is written twice, "D<|endoftext|>D"; mode=spans: it is preceded by a
# shuffled list of its own word spans, "s1, s2, ...<|endoftext|>D". Park-Miller generator (exact in
# doubles), so every awk gives the same corpus.
# mode=keys: a chosen document is preceded by the content phrases of its first text (up to its first
# <|endoftext|>) in shuffled order, "p1, p2, ...<|endoftext|>D": the maximal runs of words that are not
# function words or punctuation (keywords-to-text, a denoising objective built from the text alone).
function rnd() { state = (state * 16807) % 2147483647; return state / 2147483647 }
# The content phrases of text t, shuffled, joined by ", " ("" when none)
function keys(t,    n, w, i, p, m, ph, lw, out, j, tmp, seen) {
  n = split(t, w, / +/); m = 0; p = ""
  for (i = 1; i <= n + 1; i++) {
    lw = tolower(w[i]); gsub(/^[^a-z0-9£]+|[^a-z0-9£]+$/, "", lw)
    if (i > n || lw == "" || lw in stop || w[i] !~ /[A-Za-z0-9£]/) {
      if (p != "" && !(p in seen)) { seen[p] = 1; ph[++m] = p }
      p = ""; continue
    }
    p = (p == "" ? w[i] : p " " w[i])
  }
  for (i = m; i > 1; i--) { j = 1 + int(rnd() * i); tmp = ph[i]; ph[i] = ph[j]; ph[j] = tmp }
  out = ""; for (i = 1; i <= m; i++) out = (i > 1 ? out ", " : "") ph[i]
  return out
}
BEGIN {
  state = seed + 1
  split("a an the is are was were be been being it its it's this that these those there here and or but " \
        "with of in on at to for from by as which who whom whose where when than then so if also too very " \
        "has have had do does did can could will would should may might they them their you your we our " \
        "he she his her one some any all both each such located called named serves serving offers " \
        "offering provides providing near", sw, " ")
  for (i in sw) stop[sw[i]] = 1
}
mode == "keys" {
  if (rnd() >= frac) { print; next }
  first = $0; e = index(first, "<|endoftext|>"); if (e > 0) first = substr(first, 1, e - 1)
  k = keys(first)
  if (k == "") print; else print " " k "<|endoftext|>" $0
  next
}
{
  doc = $0
  n = split(doc, w, / +/)
  if (rnd() >= frac || n < 4 || n > 60 || index(doc, "\001") > 0) { print doc; next }
  if (mode == "repeat") { print doc "<|endoftext|>" doc; next }
  k = int(n / 6) + 1; if (k > 5) k = 5; if (k < 2) k = 2
  for (i = 1; i <= k; i++) {
    len = 1 + int(rnd() * 3); if (len > n) len = n
    st = 1 + int(rnd() * (n - len + 1))
    sp = w[st]; for (j = st + 1; j < st + len; j++) sp = sp " " w[j]
    gsub(/^[^A-Za-z0-9£]+|[^A-Za-z0-9£]+$/, "", sp)
    s[i] = sp
  }
  for (i = k; i > 1; i--) { j = 1 + int(rnd() * i); t = s[i]; s[i] = s[j]; s[j] = t }
  out = ""; m = 0
  for (i = 1; i <= k; i++) if (s[i] != "") { out = (m++ ? out ", " : "") s[i] }
  if (m == 0) { print doc; next }
  print out "<|endoftext|>" doc
}
