#pragma once
// Training checkpoints for exact resume: model parameters ("<name>"), AdamW moments
// ("opt.m.<name>", "opt.v.<name>") and metadata (step, config, anything the caller adds) in one
// safetensors file, written atomically. Batches and dropout masks are drawn from RNGs seeded by
// (seed, step), so restoring these tensors and the step reproduces the uninterrupted run bit for bit.
#include <map>
#include <string>

#include "nn/gpt.h"
#include "optim/adamw.h"

namespace lowrank::optim {

void save_training(const std::string& path, nn::GPT& model, const AdamW& opt,
                   const std::map<std::string, std::string>& meta);
// Loads into an already built model and optimizer; returns the file's metadata.
std::map<std::string, std::string> load_training(const std::string& path, nn::GPT& model, AdamW& opt);

}  // namespace lowrank::optim
