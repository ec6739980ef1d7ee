#pragma once
// The HTTP side of `serve` (examples/serve.cpp, docs/serve.md) over cpp-httplib: routes, JSON answers
// and JSON errors. Handlers run on httplib's thread pool; they parse and check a request
// (data/serve_request.h), hand it to the DecodeWorker and wait on its future, so the model is only ever
// touched by the worker's thread.
//
//   GET  /health                 {"status": "ok", "model", "adapters", "pending", "served", "batches"}
//   GET  /v1/models              {"object": "list", "data": [{"id", "object": "model", "owned_by", "rank", ...}]}
//   POST /v1/completions         {"id", "object": "text_completion", "created", "model", "choices", "usage"}
//   POST /v1/adapters            {"name", "path"} -> 201 and the adapter's model entry
//   DELETE /v1/adapters/NAME     -> 200 {"id", "object": "model", "deleted": true}
//
// Every failure is {"error": {"message", "type", "code"}} with a 4xx status (5xx for internal failures),
// also for what httplib refuses itself (an unknown route: 404, a body over the limit: 413).
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "data/serve_request.h"
#include "examples/common/serve_worker.h"

namespace lowrank::examples {

// Text generated from byte tokens may end inside a UTF-8 character: such bytes become U+FFFD.
inline void send_json(httplib::Response& res, int status, const nlohmann::ordered_json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace), "application/json");
}

// Runs body() -> (status, JSON) and answers with it, or with the JSON error of whatever it threw.
inline void respond(httplib::Response& res, const std::function<std::pair<int, nlohmann::ordered_json>()>& body) {
  try {
    const std::pair<int, nlohmann::ordered_json> r = body();
    send_json(res, r.first, r.second);
  } catch (const data::ApiError& e) {
    send_json(res, e.status, data::api_error_json(e));
  } catch (const std::exception& e) {
    send_json(res, 500, data::api_error_json(data::ApiError(500, "internal_error", e.what())));
  }
}

inline nlohmann::ordered_json model_entry(const std::string& id, const lora::LoRAConfig* c) {
  return {{"id", id},
          {"object", "model"},
          {"owned_by", "lowrank"},
          {"rank", c ? c->r : 0},
          {"alpha", c ? c->alpha : 0.f},
          {"targets", c ? nlohmann::ordered_json(c->targets) : nlohmann::ordered_json::array()}};
}

inline nlohmann::ordered_json completion_json(const data::CompletionRequest& r, const ServedCompletion& c, int64_t id) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {{"id", "cmpl-" + std::to_string(id)},
          {"object", "text_completion"},
          {"created", std::chrono::duration_cast<std::chrono::seconds>(now).count()},
          {"model", r.model},
          {"choices", {{{"text", c.text}, {"index", 0}, {"finish_reason", c.finish_reason}}}},
          {"usage",
           {{"prompt_tokens", c.prompt_tokens},
            {"completion_tokens", c.completion_tokens},
            {"total_tokens", c.prompt_tokens + c.completion_tokens}}}};
}

// httplib's own refusals (no route, a body over the limit, a malformed request line) as JSON errors.
inline httplib::Server::HandlerResponse json_error_page(const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours: JSON already
  const int s = res.status;
  const std::string msg = s == 404   ? "no route " + req.method + " " + req.path
                          : s == 413 ? "the body is larger than this server's limit (--max-body)"
                                     : "the request was refused (HTTP " + std::to_string(s) + ")";
  const std::string code = s == 404 ? "unknown_route" : s == 413 ? "body_too_large" : "bad_request";
  send_json(res, s, data::api_error_json(data::ApiError(s, code, msg)));
  return httplib::Server::HandlerResponse::Handled;
}

struct ServeRoutes {
  DecodeWorker& worker;
  const data::Tokenizer& tok;
  data::CompletionLimits limits;
  std::string base_name;
  std::atomic<int64_t> next_id{0};

  void add_to(httplib::Server& svr) {
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      respond(res, [&] { return std::make_pair(200, health()); });
    });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      respond(res, [&] { return std::make_pair(200, models()); });
    });
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      respond(res, [&] { return std::make_pair(200, complete(req.body)); });
    });
    svr.Post("/v1/adapters", [this](const httplib::Request& req, httplib::Response& res) {
      respond(res, [&] {
        const data::AdapterRequest a = data::parse_adapter_request(req.body, base_name);
        const lora::AdapterInfo info = worker.load(a.name, a.path).get();
        return std::make_pair(201, model_entry(info.name, &info.config));
      });
    });
    svr.Delete("/v1/adapters/([^/]+)", [this](const httplib::Request& req, httplib::Response& res) {
      respond(res, [&] {
        const std::string name = req.matches[1];
        if (name == base_name) throw data::ApiError(400, "invalid_value", "the base model cannot be unloaded");
        worker.unload(name).get();
        return std::make_pair(200, nlohmann::ordered_json{{"id", name}, {"object", "model"}, {"deleted", true}});
      });
    });
    svr.set_error_handler(httplib::Server::HandlerWithResponse(json_error_page));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_json(res, 500, data::api_error_json(data::ApiError(500, "internal_error", "internal error")));
    });
  }

  nlohmann::ordered_json health() const {
    return {{"status", "ok"},
            {"model", base_name},
            {"adapters", worker.adapters().size()},
            {"pending", worker.pending()},
            {"served", worker.served()},
            {"batches", worker.batches()}};
  }

  nlohmann::ordered_json models() const {
    nlohmann::ordered_json data = nlohmann::ordered_json::array({model_entry(base_name, nullptr)});
    for (const lora::AdapterInfo& a : worker.adapters()) data.push_back(model_entry(a.name, &a.config));
    return {{"object", "list"}, {"data", data}};
  }

  nlohmann::ordered_json complete(const std::string& body) {
    data::CompletionRequest r = data::parse_completion_request(body, tok, limits);
    worker.check_model(r.model);
    std::future<ServedCompletion> f = worker.submit(r);
    return completion_json(r, f.get(), next_id++);
  }
};

}  // namespace lowrank::examples
