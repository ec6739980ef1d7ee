# Copy-from-context augmentation of one-document-per-line input (newlines inside as \001).
# mode=repeat: a chosen document is written twice, "D<|endoftext|>D"; mode=spans: it is preceded by a
# shuffled list of its own word spans, "s1, s2, ...<|endoftext|>D". Park-Miller generator (exact in
# doubles), so every awk gives the same corpus.
function rnd() { state = (state * 16807) % 2147483647; return state / 2147483647 }
BEGIN { state = seed + 1 }
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
