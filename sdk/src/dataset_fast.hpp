// The fast half of read_dataset (domain.hpp): a simdjson on-demand decoder from JSON text
// straight into a Dataset, with no JSON tree in between. It enforces every rule the strict
// readers enforce, but only to say yes or no: on any doubt it gives up, and read_dataset then
// runs the strict path, which names each problem. Exposed here for the tests, which check
// that it never accepts what the strict path rejects.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "slmhub/domain.hpp"

namespace slmhub::detail {

// Bytes the decoder may read past the end of the text (simdjson's SIMDJSON_PADDING); they
// must be readable, their content does not matter.
inline constexpr std::size_t kFastPadding = 64;

// A text longer than this has its long arrays (maintenance, interruptions) read in pieces of
// about this size, so that simdjson's index (4 bytes per token) is one piece's, not the text's.
inline constexpr std::size_t kPieceBytes = 1 << 20;

// The Dataset parse_dataset(parse_json(text, max_depth)) would return, or nullopt when the
// decoder is not sure that call would succeed (malformed or invalid text, a construct it
// leaves to the strict path). `text` must be followed by kFastPadding readable bytes.
// Texts longer than `piece_bytes` are read in pieces first, and whole when a cut between
// pieces proves wrong (a cut is a guess; see dataset_fast.cpp).
std::optional<Dataset> try_fast_dataset(std::string_view text, int max_depth,
                                        std::size_t piece_bytes = kPieceBytes);

// Only the reading in pieces, whatever the text's length (for the tests, with small pieces).
// With `fd`, an open file whose contents are `text`, the pieces are read from the file.
std::optional<Dataset> try_fast_dataset_in_pieces(std::string_view text, int max_depth,
                                                  std::size_t piece_bytes, int fd = -1);

// The same for one interruption: parse_interruption(parse_json(text, max_depth)), or nullopt.
std::optional<Interruption> try_fast_interruption(std::string_view text, int max_depth);

}  // namespace slmhub::detail
