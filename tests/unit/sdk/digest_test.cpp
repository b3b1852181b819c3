// SHA-256 and base64 against their published test vectors (FIPS 180-2 examples, RFC 4648 §10).
#include "slmhub/digest.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace slmhub {
namespace {

TEST(Digest, Sha256MatchesTheStandardExamples) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Digest, Sha256InPiecesIsTheDigestOfTheWhole) {
  // FIPS 180-2's million 'a's, fed in uneven pieces.
  Sha256 digest;
  std::size_t fed = 0;
  for (std::size_t piece = 1; fed < 1000000; piece = piece * 3 % 65537 + 1) {
    const std::size_t n = std::min(piece, 1000000 - fed);
    digest.update(std::string(n, 'a'));
    fed += n;
  }
  EXPECT_EQ(digest.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_THROW(digest.update("a"), std::logic_error);
  Sha256 empty;
  EXPECT_EQ(empty.hex(), sha256_hex(""));
}

TEST(Digest, Base64RoundTripsTheRfcVectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), plain) << encoded;
  }
  const std::string bytes("\x00\xff\x10\x80", 4);
  EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
  EXPECT_EQ(base64_decode("Zm9v\r\nYmFy"), "foobar");  // MIME line breaks are skipped
}

TEST(Digest, Base64RefusesWhatIsNotBase64) {
  auto message = [](const std::string& text) {
    try {
      base64_decode(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message("Zm9v!"), "not base64 at offset 4");
  EXPECT_EQ(message("Zm=v"), "not base64 at offset 3");  // data after padding
  EXPECT_EQ(message("Zm9"), "base64 of the wrong length (3 symbols, not a multiple of 4)");
  EXPECT_NE(message("Z==="), "accepted");
}

TEST(PercentEncode, KeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(percent_encode("a-b_c.d~e f/é"), "a-b_c.d~e%20f%2F%C3%A9");
  EXPECT_EQ(percent_encode("correlation_id=SLM0000001^ORDERBYsys_id"),
            "correlation_id%3DSLM0000001%5EORDERBYsys_id");
  EXPECT_EQ(percent_encode(""), "");
}

TEST(Digest, HmacSha256MatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hex_encode(std::string("\x00\xff", 2)), "00ff");
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
}

}  // namespace
}  // namespace slmhub
