// The next page is wherever the Link header's rel="next" says, however the header is
// written; query strings are edited without disturbing what the server put in them.
#include "link_header.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace slmhub::servicenow {
namespace {

TEST(LinkHeader, FindsNextAmongServiceNowsLinks) {
  const std::string base = "https://acme.service-now.com/api/now/table/incident";
  const std::vector<std::string> headers = {
      "<" + base + "?sysparm_limit=2&sysparm_offset=0>;rel=\"first\",<" + base +
      "?sysparm_limit=2&sysparm_offset=0>;rel=\"prev\",<" + base +
      "?sysparm_limit=2&sysparm_offset=4>;rel=\"next\",<" + base +
      "?sysparm_limit=2&sysparm_offset=8>;rel=\"last\""};
  EXPECT_EQ(find_next_link(headers), base + "?sysparm_limit=2&sysparm_offset=4");
}

TEST(LinkHeader, NoNextOnTheLastPage) {
  EXPECT_EQ(find_next_link({"<https://x/a?o=0>;rel=\"first\",<https://x/a?o=2>;rel=\"prev\","
                            "<https://x/a?o=2>;rel=\"last\""}),
            std::nullopt);
  EXPECT_EQ(find_next_link({}), std::nullopt);
  EXPECT_EQ(find_next_link({""}), std::nullopt);
}

TEST(LinkHeader, ReadsEveryWayOfWritingIt) {
  // In a second header.
  EXPECT_EQ(find_next_link({"<https://x/a?o=0>; rel=\"first\"", "<https://x/a?o=2>; rel=\"next\""}),
            "https://x/a?o=2");
  // A token rel, spaces, capitals, several relation types.
  EXPECT_EQ(find_next_link({"<https://x/1>; rel=next"}), "https://x/1");
  EXPECT_EQ(find_next_link({"<https://x/2> ;  REL = \"Next\""}), "https://x/2");
  EXPECT_EQ(find_next_link({"<https://x/3>; rel=\"last next\""}), "https://x/3");
  // Commas and semicolons inside the URI (a field list) and inside a quoted parameter.
  EXPECT_EQ(find_next_link({"<https://x/a?sysparm_fields=a,b;c&o=2>; rel=\"next\""}),
            "https://x/a?sysparm_fields=a,b;c&o=2");
  EXPECT_EQ(find_next_link({"<https://x/p>; title=\"a, rel=next; <https://evil/>\"; rel=\"prev\", "
                            "<https://x/n>; rel=\"next\""}),
            "https://x/n");
}

TEST(LinkHeader, OnlyTheNextRelationCounts) {
  EXPECT_EQ(find_next_link({"<https://x/1>; rel=\"nextpage\""}), std::nullopt);
  EXPECT_EQ(find_next_link({"<https://x/1>; title=\"next\""}), std::nullopt);
  EXPECT_EQ(find_next_link({"<https://x/1>; relnext=\"next\""}), std::nullopt);
  // RFC 8288: a second rel parameter is ignored.
  EXPECT_EQ(find_next_link({"<https://x/1>; rel=\"prev\"; rel=\"next\""}), std::nullopt);
  EXPECT_EQ(find_next_link({"https://x/1; rel=\"next\""}), std::nullopt);  // no <URI>
}

TEST(Origin, SchemeHostAndPortLowerCasedWithDefaults) {
  EXPECT_EQ(origin_of("https://ACME.service-now.com"),
            (Origin{"https", "acme.service-now.com", 443}));
  EXPECT_EQ(origin_of("HTTP://127.0.0.1:8089/api/now?x=1"), (Origin{"http", "127.0.0.1", 8089}));
  EXPECT_EQ(origin_of("http://localhost"), (Origin{"http", "localhost", 80}));
  EXPECT_EQ(origin_of("https://[::1]:8443/x"), (Origin{"https", "[::1]", 8443}));
  EXPECT_EQ(origin_of("https://acme.service-now.com:443/x")->text(),
            "https://acme.service-now.com:443");
  for (const char* bad :
       {"acme.service-now.com", "ftp://x", "https://", "https://user@x/", "https://x:0",
        "https://x:65536", "https://x:8a", "https://[::1/", "https://x y/"}) {
    EXPECT_EQ(origin_of(bad), std::nullopt) << bad;
  }
}

TEST(QueryString, ParametersReplacedOrAddedOthersKept) {
  const std::string url =
      "https://x/api/now/table/incident?sysparm_limit=1000&sysparm_query=a%3D1%5Eb%3D2&"
      "sysparm_offset=3000#frag";
  EXPECT_EQ(with_query_param(url, "sysparm_limit", "500"),
            "https://x/api/now/table/incident?sysparm_query=a%3D1%5Eb%3D2&sysparm_offset=3000&"
            "sysparm_limit=500");
  EXPECT_EQ(with_query_param("https://x/a", "q", "a b^c"), "https://x/a?q=a%20b%5Ec");
  EXPECT_EQ(query_param(url, "sysparm_query"), "a=1^b=2");
  EXPECT_EQ(query_param(url, "sysparm_offset"), "3000");
  EXPECT_EQ(query_param(url, "sysparm_fields"), std::nullopt);
  EXPECT_EQ(query_param("https://x/a?flag&q=a+b", "q"), "a b");
  EXPECT_EQ(query_param("https://x/a?flag&q=a+b", "flag"), "");
}

}  // namespace
}  // namespace slmhub::servicenow
