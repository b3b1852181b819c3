#include "slmhub/errors.hpp"

namespace slmhub {
namespace {

std::string join(const std::vector<FieldError>& errors) {
  std::string text;
  for (const auto& e : errors) {
    if (!text.empty()) text += "; ";
    text += e.path + ": " + e.message;
  }
  return text;
}

}  // namespace

Problem::Problem(int status, std::string title, std::string detail, std::vector<FieldError> errors)
    : std::runtime_error(detail),
      status_(status),
      title_(std::move(title)),
      detail_(std::move(detail)),
      errors_(std::move(errors)) {}

ValidationError::ValidationError(std::vector<FieldError> errors)
    : Problem(400, "Invalid input", join(errors), errors) {}

ValidationError::ValidationError(std::string path, std::string message)
    : ValidationError(std::vector<FieldError>{{std::move(path), std::move(message)}}) {}

}  // namespace slmhub
