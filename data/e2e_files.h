#pragma once
// The file formats of the E2E challenge's scorer (tuetschek/e2e-metrics, measure_scores.py), so that
// e2e_score takes the same REFS and HYPS files:
//   references, plain text   one reference per line, the references of one MR on consecutive lines,
//                            MRs separated by one blank line (a final blank line is allowed)
//   references, CSV / TSV    a header row whose first column is "mr" (a UTF-8 BOM is dropped), then
//                            "mr,ref" rows (RFC 4180 quoting; TSV: tab-separated; blank lines skipped);
//                            consecutive rows with the same MR are one MR's references
//   outputs, plain text      one output per line
//   outputs, CSV / TSV       the same, with "mr,output" rows (columns taken by position, as there)
// A file is CSV / TSV when its name ends in .csv / .tsv (any case), as in measure_scores.py. Lines are
// stripped of surrounding whitespace like Python's str.strip(). Errors name the file and the 1-based line.
#include <string>
#include <vector>

#include "data/metrics.h"

namespace lowrank::data {

// References per MR, from a plain or CSV / TSV file (chosen by the name). An empty group (two
// blank lines in a row, a blank first line) or an empty reference is an error naming the line.
References read_reference_file(const std::string& path);

// One output per MR, from a plain or CSV / TSV file (chosen by the name). Blank lines of a plain file
// are empty outputs, as in measure_scores.py, except trailing ones.
Corpus read_output_file(const std::string& path);

// Whether the name ends in ".csv" or ".tsv" (any case): the delimiter, or 0 for a plain file.
char delimiter_of(const std::string& path);

}  // namespace lowrank::data
