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
# mode=swapkeys: as keys, after the names of the first text are swapped, everywhere in the document, for
# random other names of the corpus (a name: a content phrase of capitalised words seen >= 20 times, its
# lower-case form under a tenth of that). The base then cannot predict a name, a food or a landmark from
# the names beside it (a restaurant and "its" landmark, as the references pair them); it has to copy the
# phrase from the list before <|endoftext|>. Buffered: names are counted over the whole input first.
mode == "swapkeys" { buf[++nbuf] = $0; next }
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

# The phrases of t (keys' splitting, in order) into ph[1..m]; returns m.
function phrases(t, ph,    n, w, i, p, m, lw) {
  n = split(t, w, / +/); m = 0; p = ""
  for (i = 1; i <= n + 1; i++) {
    lw = tolower(w[i]); gsub(/^[^a-z0-9£]+|[^a-z0-9£]+$/, "", lw)
    if (i > n || lw == "" || lw in stop || w[i] !~ /[A-Za-z0-9£]/ || w[i] ~ /endoftext/) {
      if (p != "") ph[++m] = p
      p = ""; continue
    }
    gsub(/^[.,;:!?"'()-]+|[.,;:!?"'()-]+$/, "", w[i])  # ASCII punctuation only: "Café" keeps its bytes
    p = (p == "" ? w[i] : p " " w[i])
  }
  return m
}
function capitalised(p,    w, n, i) { n = split(p, w, " "); for (i = 1; i <= n; i++) if (w[i] !~ /^[A-Z]/) return 0; return 1 }
# s with every occurrence of a replaced by b (plain text, no regex)
function replace_all(s, a, b,    out, i) {
  out = ""
  while ((i = index(s, a)) > 0) { out = out substr(s, 1, i - 1) b; s = substr(s, i + length(a)) }
  return out s
}
END {
  if (mode != "swapkeys") exit
  for (d = 1; d <= nbuf; d++) {
    m = phrases(buf[d], ph)
    for (i = 1; i <= m; i++) if (capitalised(ph[i])) cap[ph[i]]++; else low[tolower(ph[i])]++
    delete ph
  }
  npool = 0
  for (p in cap) if (cap[p] >= 20 && low[tolower(p)] * 10 < cap[p]) names[++npool] = p
  n = asort_names(names, npool)
  for (i = 1; i <= npool; i++) {  # a food: followed by food/restaurant/cuisine in at least 15% of its uses
    all = 0; fed = 0
    for (d = 1; d <= nbuf; d++) {
      all += count(buf[d], names[i])
      fed += count(buf[d], names[i] " food") + count(buf[d], names[i] " restaurant") + count(buf[d], names[i] " cuisine")
    }
    food[i] = (fed >= 0.15 * all)
  }
  for (d = 1; d <= nbuf; d++) {
    doc = buf[d]
    if (rnd() >= frac) { print doc; continue }
    first = doc; e = index(first, "<|endoftext|>"); if (e > 0) first = substr(first, 1, e - 1)
    m = (npool < 2 ? 0 : phrases(first, ph)); k = 0  # a source without names (SST-2) gets keywords alone
    for (i = 1; i <= m; i++) if (ph[i] in isname && !(ph[i] in done)) { done[ph[i]] = 1; src[++k] = ph[i] }
    for (i = 1; i <= k; i++) {                      # through placeholders: a -> b and b -> c never chain
      do { j = 1 + int(rnd() * npool) } while (names[j] == src[i] || food[j] != food[idx[src[i]]])
      dst[i] = names[j]; doc = replace_all(doc, src[i], "\002" i "\002")
    }
    for (i = 1; i <= k; i++) doc = replace_all(doc, "\002" i "\002", dst[i])
    delete ph; delete done
    first = doc; e = index(first, "<|endoftext|>"); if (e > 0) first = substr(first, 1, e - 1)
    kk = keys(first)
    if (kk == "") print doc; else print " " kk "<|endoftext|>" doc
  }
}
# names[1..n] sorted (insertion sort: a portable order, whatever awk's "for in" order is), isname set
function asort_names(a, n,    i, j, t) {
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  for (i = 1; i <= n; i++) { isname[a[i]] = 1; idx[a[i]] = i }
  return n
}
# occurrences of a in s (plain text)
function count(s, a,    c, i) { c = 0; while ((i = index(s, a)) > 0) { c++; s = substr(s, i + length(a)) } return c }
