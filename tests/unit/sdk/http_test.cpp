// Route roles: which principals a route admits, and which roles a route may name.
#include "slmhub/http.hpp"

#include <gtest/gtest.h>

namespace slmhub {
namespace {

Principal with(std::set<std::string> roles) {
  Principal p;
  p.roles = std::move(roles);
  return p;
}

TEST(RouteRoles, AnyAlternativeAdmits) {
  const Principal deputy = with({"approver"});
  const Principal manager = with({"service_manager", "viewer"});
  const Principal customer = with({"customer:library"});
  const Principal admin = with({"admin"});
  EXPECT_TRUE(deputy.admitted_by("service_manager|approver"));
  EXPECT_TRUE(manager.admitted_by("service_manager|approver"));
  EXPECT_FALSE(customer.admitted_by("service_manager|approver"));
  EXPECT_TRUE(admin.admitted_by("service_manager|approver"));
  EXPECT_TRUE(customer.admitted_by("customer|viewer"));
  EXPECT_TRUE(manager.admitted_by("customer|viewer"));
  EXPECT_FALSE(deputy.admitted_by("customer|viewer"));
  EXPECT_FALSE(deputy.admitted_by("viewer"));
}

TEST(RouteRoles, OnlyKnownRolesSeparatedByBars) {
  for (const char* role :
       {"", "viewer", "customer|viewer", "service_manager|approver", "customer|operator|billing"}) {
    EXPECT_TRUE(valid_route_role(role)) << role;
  }
  for (const char* role : {"customer:library", "approvers", "viewer|", "|viewer", "viewer||admin",
                           "service_manager,approver"}) {
    EXPECT_FALSE(valid_route_role(role)) << role;
  }
}

}  // namespace
}  // namespace slmhub
