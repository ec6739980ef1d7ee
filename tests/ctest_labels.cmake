# One ctest label per doctest case, so a tier runs by label: `ctest -L unit` (seconds), `-L cli`
# (the command-line programs, run as a user runs them), `-L e2e` (whole models trained or loaded and
# compared with a reference or a committed checkpoint). Included by ctest after doctest's discovered
# list (TEST_INCLUDE_FILES, appended after doctest_discover_tests), whose names it reads from
# lowrank_tests_TESTS. The label follows the name's prefix: a new test gets "unit" unless its prefix
# is listed below, so every test has exactly one label.
#   cli: runs a program of examples/ (cli: ..., e2e_score: ..., ablation: ..., hf dir: finetune_e2e ...,
#        own data: finetune ..., own data: generate ..., own data: to_jsonl ..., adapters: ..., serve: ...,
#        data parallel: ... (under mpirun, with a timeout so that a hung rank fails the test), bf16 cli: ...)
#   e2e: trains or loads a whole model against a reference (PyTorch, transformers, peft) or a base
#        checkpoint of data/assets
set(lowrank_cli_re "^(cli[ :_]|e2e_score: |ablation: |hf dir: finetune_e2e |own data: finetune |own data: generate |own data: to_jsonl |adapters: |serve: |data parallel: |bf16 cli: )")
set(lowrank_e2e_re "^(train smoke: |train reference: |base checkpoint: |hf gpt2: |peft fixtures: |hf dir: )")
foreach(lowrank_test IN LISTS lowrank_tests_TESTS)
  if(lowrank_test MATCHES "${lowrank_cli_re}")
    set(lowrank_label cli)
  elseif(lowrank_test MATCHES "${lowrank_e2e_re}")
    set(lowrank_label e2e)
  else()
    set(lowrank_label unit)
  endif()
  set_tests_properties("${lowrank_test}" PROPERTIES LABELS ${lowrank_label})
  # A build without cpp-httplib has one serve test, which prints this line: ctest reports it skipped.
  if(lowrank_test MATCHES "^serve: ")
    set_tests_properties("${lowrank_test}" PROPERTIES SKIP_REGULAR_EXPRESSION "serve: built without cpp-httplib")
  endif()
  if(lowrank_test MATCHES "^data parallel: ")
    set_tests_properties("${lowrank_test}" PROPERTIES TIMEOUT 240)
  endif()
endforeach()
