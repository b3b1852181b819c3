#include "documents.hpp"

#include <stdexcept>

#include "slmhub/digest.hpp"

namespace slmhub::workflows {
namespace {

const char* const kColumns = "id, owner, name, content_type, size, sha256, created_at";

Attachment read_row(const Row& r) {
  return {r.integer(0),
          r.text(1),
          r.text(2),
          r.text(3),
          r.integer(4),
          r.text(5),
          from_epoch(r.integer(6))};
}

}  // namespace

Upload read_upload(const Json& value, const std::string& path, std::vector<FieldError>& errors) {
  ObjectReader r(value, path, errors);
  Upload out;
  out.name = r.required_string("name");
  out.content_type = r.optional_string("content_type").value_or("application/octet-stream");
  const std::string content = r.required_string("content_base64", EmptyString::allow);
  r.finish();
  try {
    out.bytes = base64_decode(content);
  } catch (const std::invalid_argument& e) {
    errors.push_back({path_key(path, "content_base64"), e.what()});
  }
  return out;
}

Json attachment_json(const Attachment& a) {
  return {{"id", a.id},     {"name", a.name},     {"content_type", a.content_type},
          {"size", a.size}, {"sha256", a.sha256}, {"at", format_instant(a.at)}};
}

std::vector<Migration> Attachments::migrations() {
  return {{1, "files attached to SIAs, credit requests and disputes",
           "CREATE TABLE workflow_attachments(id {{serial}}, owner TEXT NOT NULL, "
           "name TEXT NOT NULL, content_type TEXT NOT NULL, size BIGINT NOT NULL, "
           "sha256 TEXT NOT NULL, content TEXT NOT NULL, created_at BIGINT NOT NULL);"
           "CREATE INDEX workflow_attachments_owner ON workflow_attachments(owner, id)"}};
}

Attachment Attachments::add(Tx& tx, const std::string& owner, const Upload& upload, Instant at) {
  Attachment out{0,
                 owner,
                 upload.name,
                 upload.content_type,
                 static_cast<std::int64_t>(upload.bytes.size()),
                 sha256_hex(upload.bytes),
                 at};
  // The bytes are kept as base64 text: one portable column type for SQLite and PostgreSQL.
  auto rows = tx.query(
      "INSERT INTO workflow_attachments(owner, name, content_type, size, sha256, content, "
      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
      {owner, out.name, out.content_type, out.size, out.sha256, base64_encode(upload.bytes),
       to_epoch(at)});
  out.id = rows.at(0).integer(0);
  return out;
}

std::vector<Attachment> Attachments::list(const std::string& owner) const {
  std::vector<Attachment> out;
  for (const auto& row : store_.query(std::string("SELECT ") + kColumns +
                                          " FROM workflow_attachments WHERE owner = ? ORDER BY id",
                                      {owner})) {
    out.push_back(read_row(row));
  }
  return out;
}

std::optional<std::pair<Attachment, std::string>> Attachments::read(const std::string& owner,
                                                                    std::int64_t id) const {
  auto rows = store_.query(std::string("SELECT ") + kColumns +
                               ", content FROM workflow_attachments WHERE owner = ? AND id = ?",
                           {owner, id});
  if (rows.empty()) return std::nullopt;
  return std::make_pair(read_row(rows.front()), base64_decode(rows.front().text(7)));
}

}  // namespace slmhub::workflows
