// The dataset codec (import files, POST /api/v1/import): read_dataset's fast simdjson decoder
// against the strict path (parse_json + parse_dataset), the reference. The decoder either
// gives up or returns exactly the strict Dataset; read_dataset returns the strict Dataset or
// throws the strict errors; every message is printable; and a Dataset that reads back from
// to_json() is the same Dataset (the export/import round trip).
#include <optional>
#include <string>
#include <vector>

#include "checks.hpp"
#include "dataset_fast.hpp"
#include "slmhub/domain.hpp"

namespace slmhub::fuzz {
namespace {

struct Verdict {
  std::optional<Dataset> dataset;
  std::string errors;  // the ValidationError, described
};

template <typename Read>
Verdict verdict_of(Read&& read, std::string_view what) {
  try {
    return {read(), {}};
  } catch (const ValidationError& e) {
    check_problem(e, what);
    return {std::nullopt, describe(e)};
  }
}

}  // namespace

void check_dataset(std::string_view input) {
  const std::string text(input);
  const Verdict strict = verdict_of([&] { return parse_dataset(parse_json(text)); }, "strict");

  std::string padded = text;
  padded.append(detail::kFastPadding, ' ');
  const std::optional<Dataset> fast =
      detail::try_fast_dataset(std::string_view(padded.data(), text.size()), 64);
  if (fast) {
    expect(strict.dataset.has_value(),
           "the fast decoder accepts what the strict path refuses: " + strict.errors);
    expect(*fast == *strict.dataset,
           "the fast decoder and the strict path read different Datasets");
  }
  // The long arrays read in pieces of one entry each, as large datasets are.
  const std::optional<Dataset> in_pieces =
      detail::try_fast_dataset_in_pieces(std::string_view(padded.data(), text.size()), 64, 1);
  if (in_pieces) {
    expect(strict.dataset.has_value(),
           "the fast decoder in pieces accepts what the strict path refuses: " + strict.errors);
    expect(*in_pieces == *strict.dataset,
           "the fast decoder in pieces and the strict path read different Datasets");
  }

  const Verdict read = verdict_of([&] { return read_dataset(text); }, "read_dataset");
  expect(read.dataset.has_value() == strict.dataset.has_value(),
         "read_dataset and the strict path disagree: " + read.errors + " / " + strict.errors);
  if (read.dataset) {
    expect(*read.dataset == *strict.dataset, "read_dataset and the strict path differ");
    const Verdict back = verdict_of([&] { return parse_dataset(to_json(*read.dataset)); }, "back");
    expect(back.dataset.has_value(),
           "to_json of a read Dataset does not read back: " + back.errors);
    expect(*back.dataset == *read.dataset, "to_json of a read Dataset reads back different");
  } else {
    expect(read.errors == strict.errors,
           "read_dataset and the strict path report different errors: " + read.errors + " / " +
               strict.errors);
  }
}

}  // namespace slmhub::fuzz
