#include "slmhub/store.hpp"

#include <stdexcept>

namespace slmhub {
namespace {

const Value& column(const Row& row, std::size_t i) {
  if (i >= row.values.size()) {
    throw std::out_of_range("row column " + std::to_string(i) + " does not exist; the row has " +
                            std::to_string(row.values.size()) + " columns");
  }
  return row.values[i];
}

const char* kind(const Value& value) {
  if (std::holds_alternative<std::monostate>(value)) return "NULL";
  if (std::holds_alternative<std::int64_t>(value)) return "an integer";
  return "text";
}

[[noreturn]] void wrong_kind(std::size_t i, const Value& value, const char* expected) {
  throw std::runtime_error("row column " + std::to_string(i) + " is " + kind(value) +
                           ", expected " + expected);
}

}  // namespace

bool Row::is_null(std::size_t i) const {
  return std::holds_alternative<std::monostate>(column(*this, i));
}

std::int64_t Row::integer(std::size_t i) const {
  const Value& value = column(*this, i);
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return *integer;
  wrong_kind(i, value, "an integer");
}

const std::string& Row::text(std::size_t i) const {
  const Value& value = column(*this, i);
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  wrong_kind(i, value, "text");
}

std::optional<std::int64_t> Row::optional_integer(std::size_t i) const {
  if (is_null(i)) return std::nullopt;
  return integer(i);
}

std::optional<std::string> Row::optional_text(std::size_t i) const {
  if (is_null(i)) return std::nullopt;
  return text(i);
}

}  // namespace slmhub
