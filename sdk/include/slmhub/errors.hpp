// Errors that cross the plugin boundary. Plugins throw these from request handlers and
// commands; the host turns them into RFC 7807 problem responses or sysexits codes, so a
// plugin never formats an HTTP error or picks an exit status itself.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace slmhub {

// One broken rule in one place of an input: `path` is a JSON path ("$.services[2].id"),
// a file:line, or a parameter name; `message` says what is wrong and what is allowed.
struct FieldError {
  std::string path;
  std::string message;
};

// An error a client caused or may retry. `status` is the HTTP status it maps to; the CLI
// maps it to a sysexits code (4xx input → 65, 503 → 75).
class Problem : public std::runtime_error {
 public:
  Problem(int status, std::string title, std::string detail, std::vector<FieldError> errors = {});
  int status() const { return status_; }
  const std::string& title() const { return title_; }
  const std::string& detail() const { return detail_; }
  const std::vector<FieldError>& errors() const { return errors_; }

 private:
  int status_;
  std::string title_;
  std::string detail_;
  std::vector<FieldError> errors_;
};

// Input that breaks a rule of the format or the domain (400).
class ValidationError : public Problem {
 public:
  explicit ValidationError(std::vector<FieldError> errors);
  ValidationError(std::string path, std::string message);
};

class NotFound : public Problem {
 public:
  explicit NotFound(std::string detail) : Problem(404, "Not Found", std::move(detail)) {}
};

// The request is well formed but the current state forbids it (409).
class Conflict : public Problem {
 public:
  explicit Conflict(std::string detail) : Problem(409, "Conflict", std::move(detail)) {}
};

}  // namespace slmhub
