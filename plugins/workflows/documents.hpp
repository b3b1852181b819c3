// Files attached to workflow documents: the restoration notice of an SIA, the supporting
// documents of a credit request or a dispute, the outcome e-mail of a dispute. Each is kept
// whole in the store with its name, media type, size and SHA-256, so what was sent or
// received can be shown and verified later.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/errors.hpp"
#include "slmhub/json.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::workflows {

// A file as a client sends it in JSON: {"name", "content_type", "content_base64"}.
struct Upload {
  std::string name;
  std::string content_type;
  std::string bytes;  // decoded
};

// Reads one upload strictly at `path` (unknown keys, an empty name, base64 that does not
// decode are errors naming the path).
Upload read_upload(const Json& value, const std::string& path, std::vector<FieldError>& errors);

struct Attachment {
  std::int64_t id = 0;
  std::string owner;  // "sia/INC0001", "credit-request/CRQ-000001", "dispute/DSP-000001"
  std::string name;
  std::string content_type;
  std::int64_t size = 0;
  std::string sha256;  // lower-case hex of the bytes
  Instant at{};
};

// {"id", "name", "content_type", "size", "sha256", "at"}: what the API shows (never the bytes).
Json attachment_json(const Attachment& attachment);

class Attachments {
 public:
  explicit Attachments(Store& store) : store_(store) {}
  static std::vector<Migration> migrations();

  Attachment add(Tx& tx, const std::string& owner, const Upload& upload, Instant at);
  std::vector<Attachment> list(const std::string& owner) const;
  // The attachment and its bytes, when `id` belongs to `owner`.
  std::optional<std::pair<Attachment, std::string>> read(const std::string& owner,
                                                         std::int64_t id) const;

 private:
  Store& store_;
};

}  // namespace slmhub::workflows
